import { describe, expect, test } from '@jest/globals';
import { renderLoginPage } from './login-page.js';
import { renderMessagePage } from './message-page.js';
import { renderNginxPages } from './nginx-pages.js';

describe('views escape everything they are given', () => {
  test.each([
    ['brand name', { brandName: '<script>x</script>' }, '&lt;script&gt;x&lt;/script&gt;'],
    ['echoed username', { username: '"><img src=x onerror=alert(1)>' }, 'value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"'],
    ['error message', { error: 'a & b <c>' }, 'a &amp; b &lt;c&gt;'],
    ['return path', { returnPath: "/a?b='c'&d" }, 'value="/a?b=&#39;c&#39;&amp;d"'],
  ])('login page: %s', (_name, input, expected) => {
    const html = renderLoginPage({ brandName: 'Acme', returnPath: '/', csrfToken: 't', ...input });
    expect(html).toContain(expected);
    expect(html).not.toContain('<script>x');
    expect(html).not.toContain('<img');
  });

  test('message page escapes title, message, link and request id', () => {
    const html = renderMessagePage({
      brandName: 'Acme',
      title: '<b>t</b>',
      message: '<i>m</i>',
      link: { href: '/login?rd=%2Fa&x="', text: '<u>go</u>' },
      requestId: '<id>',
    });
    expect(html).not.toMatch(/<b>|<i>|<u>|<id>/);
    expect(html).toContain('href="/login?rd=%2Fa&amp;x=&quot;"');
  });

  test('nginx pages: BRAND_NAME is escaped, so it can neither add markup nor an SSI directive', () => {
    const pages = renderNginxPages('<!--# include virtual="/x" --><b>', { css: '', logoSrc: null });
    for (const html of Object.values(pages)) {
      expect(html).toContain('&lt;!--# include virtual=&quot;/x&quot; --&gt;&lt;b&gt;');
      expect(html).not.toContain('<!--# include');
      expect(html).not.toContain('<b>');
    }
  });
});

describe('the pages say the right words', () => {
  test('the login page after sign-out says so in a status box, and not over a sign-in error', () => {
    const base = { brandName: 'Acme', returnPath: '/', csrfToken: 't' };
    expect(renderLoginPage({ ...base, signedOut: true })).toContain('<p class="notice" role="status">You have been signed out.</p>');
    expect(renderLoginPage(base)).not.toContain('signed out');
    expect(renderLoginPage({ ...base, signedOut: true, error: 'Invalid username or password.' })).not.toContain('signed out');
  });

  test('nginx has one page for the app and one for the sign-in service, each with the request id by SSI', () => {
    const pages = renderNginxPages('Acme', { css: '', logoSrc: null });
    expect(Object.keys(pages).sort()).toEqual(['400.html', '403.html', '429.html', '50x-auth.html', '50x.html']);
    expect(pages['50x.html']).toContain('The application behind this gateway is not answering');
    expect(pages['50x-auth.html']).toContain('The sign-in service of this gateway is not answering');
    expect(pages['50x-auth.html']).not.toContain('application');
    for (const html of Object.values(pages)) {
      expect(html).toContain('Request id: <code><!--# echo var="request_id" encoding="entity" default="" --></code>');
      expect(html).toContain('<span>Acme</span>');
    }
    expect(pages['403.html']).toContain('<!--# if expr="$gate_log_user" --><p>You are signed in as <strong><!--# echo var="gate_log_user" encoding="entity" default="" --></strong>.</p>');
    expect(pages['403.html']).toContain('<form method="post" action="/logout">');
  });
});
