import { describe, expect, test } from '@jest/globals';
import { renderLoginPage } from './login-page.js';
import { renderMessagePage } from './message-page.js';

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
});
