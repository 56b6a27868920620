/**
 * deploy/kubernetes, checked offline (no cluster, no network): every manifest against the
 * Kubernetes API schemas (kubernetes-models), and against what the containers really do: image names
 * as docker-compose builds them, container ports the services listen on, environment variables the
 * programs read, probe paths they serve, ConfigMap/Secret references that kustomize generates (so a
 * change rolls the pods), and the network flows allowed.
 *
 * kustomize itself is not run: the test reads kustomization.yaml (resources, generators, images) the
 * way kustomize does for the features used here. Not checked: fields the schemas do not know
 * (kubernetes-models, like the API server's non-strict mode, ignores unknown fields), and anything
 * only a cluster shows (the CNI enforcing NetworkPolicy, the ingress controller's namespace).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace, ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { loadConfig, SCHEMA_VARIABLES } from '../../auth-service/src/config.js';
import { runGateFilesCli } from '../../auth-service/src/cli/gate-files-cli.js';
import { compilePolicyFile } from '../../auth-service/src/policy/policy-runtime.js';
import { createHealthRouter } from '../../auth-service/src/routes/health.js';
import { startDemoApp } from '../../examples/demo-app/server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const read = (p: string) => fs.readFileSync(path.resolve(ROOT, p), 'utf8');

// ---------------------------------------------------------------------------------------------
// A small kustomize: resources, configMapGenerator/secretGenerator (envs, files), images.

type Obj = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: unknown }; [k: string]: any };

interface Generated {
  kind: 'ConfigMap' | 'Secret';
  name: string;
  data: Record<string, string>;
  /** For files: key -> source path. */
  sources: Record<string, string>;
}

interface Kustomization {
  dir: string;
  doc: any;
  objects: Obj[];
  generated: Generated[];
}

/** KEY=VALUE lines, as kustomize reads `envs:` files (comments and blank lines skipped). */
function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`${file}: not KEY=VALUE: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function loadKustomization(dir: string): Kustomization {
  const doc = parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
  const objects: Obj[] = [];
  for (const file of doc.resources ?? []) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      const o = d.toJS();
      if (o !== null) objects.push(o);
    }
  }
  const generated: Generated[] = [];
  for (const [kind, key] of [
    ['ConfigMap', 'configMapGenerator'],
    ['Secret', 'secretGenerator'],
  ] as const) {
    for (const g of doc[key] ?? []) {
      const data: Record<string, string> = {};
      const sources: Record<string, string> = {};
      for (const envFile of g.envs ?? []) Object.assign(data, readEnvFile(path.join(dir, envFile)));
      for (const entry of g.files ?? []) {
        const [k, p] = String(entry).includes('=') ? String(entry).split('=') : [path.basename(entry), entry];
        sources[k!] = path.join(dir, p!);
        data[k!] = fs.readFileSync(path.join(dir, p!), 'utf8');
      }
      generated.push({ kind, name: g.name, data, sources });
    }
  }
  return { dir, doc, objects, generated };
}

const main = loadKustomization(HERE);
const postgres = loadKustomization(path.join(HERE, 'postgres'));
const byKind = (k: Kustomization, kind: string) => k.objects.filter((o) => o.kind === kind);
const named = (k: Kustomization, kind: string, name: string): Obj => {
  const o = k.objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const generator = (name: string): Generated => {
  const g = main.generated.find((x) => x.name === name);
  if (!g) throw new Error(`no generator ${name}`);
  return g;
};
const podSpec = (o: Obj) => o.spec.template.spec;
const allContainers = (o: Obj): any[] => [...(podSpec(o).initContainers ?? []), ...podSpec(o).containers];
const container = (o: Obj, name: string) => {
  const c = allContainers(o).find((x) => x.name === name);
  if (!c) throw new Error(`${o.metadata.name}: no container ${name}`);
  return c;
};

/** The environment a container sees: envFrom (generated ConfigMaps/Secrets), then env. */
function environmentOf(c: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) Object.assign(env, generator((from.configMapRef ?? from.secretRef).name).data);
  for (const e of c.env ?? []) env[e.name] = e.value;
  return env;
}

// ---------------------------------------------------------------------------------------------

const MODELS: Record<string, { validate(): void } & any> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/** The generated objects as kustomize emits them (names without the hash suffix). */
function generatedObjects(k: Kustomization): Obj[] {
  return k.generated.map((g) =>
    g.kind === 'ConfigMap'
      ? { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data: g.data }
      : { apiVersion: 'v1', kind: 'Secret', metadata: { name: g.name }, type: 'Opaque', data: Object.fromEntries(Object.entries(g.data).map(([key, v]) => [key, Buffer.from(v).toString('base64')])) },
  );
}

describe('deploy/kubernetes: the Kubernetes API schemas', () => {
  const everything = [...main.objects, ...generatedObjects(main), ...postgres.objects];
  it.each(everything.map((o) => [`${o.kind} ${o.metadata.name}`, o] as const))('%s is a valid object of its API version', (_label, o) => {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    expect(Model).toBeDefined();
    expect(() => new Model(o).validate()).not.toThrow();
  });

  it('rejects a wrong type, so the schemas are really applied', () => {
    const broken = structuredClone(named(main, 'Deployment', 'nginx'));
    podSpec(broken).containers[0].ports[0].containerPort = '8080';
    expect(() => new Deployment(broken as any).validate()).toThrow(/containerPort/);
  });

  it('lists every manifest file in a kustomization, and each exists', () => {
    for (const k of [main, postgres]) {
      const onDisk = fs.readdirSync(k.dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
      expect([...k.doc.resources].sort()).toEqual(onDisk.sort());
    }
  });

  it('puts everything in one namespace, which the kustomization creates', () => {
    expect(main.doc.namespace).toBe(named(main, 'Namespace', main.doc.namespace).metadata.name);
    expect(postgres.doc.namespace).toBe(main.doc.namespace);
    for (const o of [...main.objects, ...postgres.objects]) expect(o.metadata.namespace).toBeUndefined();
  });
});

describe('deploy/kubernetes: images and ports match what docker-compose builds and the services listen on', () => {
  const compose = parse(read('docker-compose.yml'));
  const workloads = [...byKind(main, 'Deployment'), ...byKind(postgres, 'StatefulSet')];

  it('uses exactly the images docker-compose builds, each from its Dockerfile', () => {
    const built = Object.entries<any>(compose.services).filter(([, s]) => s.build !== undefined);
    const builtImages = new Map(built.map(([, s]) => [s.image as string, s.build.dockerfile as string]));
    expect([...builtImages.keys()].sort()).toEqual(['identity-gateway-auth', 'identity-gateway-demo-app', 'identity-gateway-nginx']);
    for (const [image, dockerfile] of builtImages) expect(read(dockerfile)).toContain(`-t ${image} .`);
    const used = new Set(byKind(main, 'Deployment').flatMap((d) => allContainers(d).map((c) => c.image)));
    expect([...used].sort()).toEqual([...builtImages.keys()].sort());
    // Only the name: the tag (or registry) is set once, in the kustomization's images list.
    expect(main.doc.images.map((i: { name: string }) => i.name).sort()).toEqual([...used].sort());
    // The optional PostgreSQL is the same image as in docker-compose.yml.
    // docker-compose.yml names it `${POSTGRES_IMAGE:-postgres:16}`: the default is what users get.
    const composeImage = String(compose.services.postgres.image).replace(/^\$\{[A-Z_]+:-(.+)\}$/, '$1');
    expect(composeImage).toMatch(/^postgres:\d+$/);
    expect(container(named(postgres, 'StatefulSet', 'postgres'), 'postgres').image).toBe(composeImage);
  });

  it('declares the port each program listens on, the same as docker-compose and the Dockerfile', () => {
    const auth = container(named(main, 'Deployment', 'auth'), 'auth');
    const nginx = container(named(main, 'Deployment', 'nginx'), 'nginx');
    const app = container(named(main, 'Deployment', 'demo-app'), 'demo-app');
    const cases = [
      { c: auth, port: Number(environmentOf(auth).AUTH_PORT), composePort: compose.services.auth.environment.AUTH_PORT, dockerfile: 'docker/auth.Dockerfile' },
      { c: nginx, port: Number(environmentOf(nginx).PROXY_LISTEN), composePort: compose.services.nginx.environment.PROXY_LISTEN, dockerfile: 'docker/nginx.Dockerfile' },
      { c: app, port: Number(environmentOf(app).DEMO_APP_PORT), composePort: compose.services['demo-app'].environment.DEMO_APP_PORT, dockerfile: 'docker/demo-app.Dockerfile' },
    ];
    for (const { c, port, composePort, dockerfile } of cases) {
      expect(c.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([port]);
      expect(String(port)).toBe(composePort);
      expect(read(dockerfile)).toMatch(new RegExp(`^EXPOSE ${port}$`, 'm'));
    }
    // The auth service must listen beyond the pod's loopback.
    expect(environmentOf(auth).AUTH_HOST).toBe('0.0.0.0');
    expect(environmentOf(app).DEMO_APP_HOST).toBe('0.0.0.0');
  });

  it('points every Service at a named port that its pods declare', () => {
    for (const k of [main, postgres]) {
      for (const svc of byKind(k, 'Service')) {
        const pods = workloads.filter((w) => Object.entries(svc.spec.selector).every(([key, v]) => w.spec.template.metadata.labels[key] === v));
        expect(pods.map((p) => p.metadata.name)).toEqual([svc.metadata.name]);
        for (const p of svc.spec.ports) expect(podSpec(pods[0]!).containers.flatMap((c: any) => c.ports.map((cp: any) => cp.name))).toContain(p.targetPort);
      }
    }
  });

  it("resolves nginx's upstreams and the Ingress backend to Services and ports that exist", () => {
    const env = environmentOf(container(named(main, 'Deployment', 'nginx'), 'nginx'));
    for (const upstream of [env.APP_UPSTREAM!, env.AUTH_UPSTREAM!]) {
      const [host, port] = upstream.split(':');
      expect(named(main, 'Service', host!).spec.ports.map((p: { port: number }) => p.port)).toContain(Number(port));
    }
    for (const rule of named(main, 'Ingress', 'gateway').spec.rules) {
      for (const p of rule.http.paths) {
        const svc = named(main, 'Service', p.backend.service.name);
        expect(svc.spec.ports.map((x: { name: string }) => x.name)).toContain(p.backend.service.port.name);
        expect(svc.metadata.name).toBe('nginx');
      }
    }
    // DATABASE_URL's default host is the optional StatefulSet's Service.
    const db = new URL(generator('gateway-secrets').data.DATABASE_URL!);
    expect(Number(db.port)).toBe(named(postgres, 'Service', db.hostname).spec.ports[0].port);
  });
});

describe('deploy/kubernetes: every environment variable is one the program reads', () => {
  const configSource = read('auth-service/src/config.ts');
  const entrypoint = read('docker/nginx-entrypoint.sh');
  const demoApp = read('examples/demo-app/server.ts');
  const compose = parse(read('docker-compose.yml'));
  /** Read by the auth service beside its schema (loadSecrets), or by node-postgres (libpq's name; docker-compose.yml sets it too). */
  const authExtras = (name: string) =>
    (['JWT_SECRET', 'JWT_PREVIOUS_SECRETS'].includes(name) && configSource.includes(`readVariable(env, '${name}')`)) ||
    (name === 'PGPASSWORD' && compose.services.auth.environment.PGPASSWORD !== undefined);
  const readers: Record<string, (name: string) => boolean> = {
    'identity-gateway-auth': (name) => SCHEMA_VARIABLES.includes(name) || authExtras(name),
    'identity-gateway-nginx': (name) => new RegExp(`\\$\\{?${name}\\b`).test(entrypoint),
    'identity-gateway-demo-app': (name) => demoApp.includes(`process.env.${name}`),
  };
  const cases = byKind(main, 'Deployment').flatMap((d) => allContainers(d).map((c) => [`${d.metadata.name}/${c.name}`, c] as const));

  it.each(cases)('%s', (_label, c) => {
    const reads = readers[c.image]!;
    const unread = Object.keys(environmentOf(c)).filter((name) => !reads(name));
    expect(unread).toEqual([]);
  });

  it('sets every variable the nginx entrypoint requires', () => {
    const env = environmentOf(container(named(main, 'Deployment', 'nginx'), 'nginx'));
    for (const m of entrypoint.matchAll(/^require_directive_value (\w+)$/gm)) expect(env[m[1]!]).toBeTruthy();
  });
});

describe('deploy/kubernetes: secrets are placeholders, and the config the pods load is valid', () => {
  const secrets = generator('gateway-secrets').data;
  const settings = generator('gateway-settings').data;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-manifests-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  /** The auth pod's environment with the file paths of the pod mapped to this checkout. */
  const podEnv = (overrides: Record<string, string>) => ({ ...environmentOf(container(named(main, 'Deployment', 'auth'), 'auth')), POLICY_FILE: generator('gateway-nginx').sources['policy.yaml']!, ...overrides });

  it('ships no secret: each secret value is a REPLACE placeholder or empty', () => {
    for (const [name, value] of Object.entries(secrets)) {
      if (name === 'DATABASE_URL') expect(new URL(value).password).toBe('');
      else expect(value === '' || value.startsWith('REPLACE')).toBe(true);
    }
  });

  it('is refused by the auth service as shipped, on JWT_SECRET alone (fail closed: nobody runs with the placeholder)', () => {
    const loaded = loadConfig(podEnv({}));
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) {
      expect(loaded.errors).toHaveLength(1);
      expect(loaded.errors[0]).toMatch(/^JWT_SECRET: /);
    }
  });

  it('loads, with a real key filled in, and the gate-files init container writes the gate files from it', async () => {
    const key = crypto.randomBytes(48).toString('base64');
    expect(loadConfig(podEnv({ JWT_SECRET: key })).ok).toBe(true);
    const init = container(named(main, 'Deployment', 'nginx'), 'gate-files');
    const env = { ...environmentOf(init), JWT_SECRET: key, POLICY_FILE: generator('gateway-nginx').sources['policy.yaml']!, GATE_CONFIG_FILE: path.join(tmp, 'gate-config.json') };
    let stderr = '';
    const code = await runGateFilesCli([], { env, stderr: { write: (t: string) => (stderr += t) }, logStream: { write: () => true } as any });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readdirSync(tmp).sort()).toEqual(['gate-config.json', 'jwks.json', 'pages', 'policy.json']);
  });

  it('compiles the shipped policy', () => {
    const compiled = compilePolicyFile(generator('gateway-nginx').sources['policy.yaml']!, Math.floor(Date.now() / 1000));
    expect(compiled.ok).toBe(true);
  });

  it('gives the auth service and the init container the same settings and Secret (one source for the gate config)', () => {
    const refs = (c: any) => (c.envFrom ?? []).map((f: any) => (f.configMapRef ?? f.secretRef).name).sort();
    const init = container(named(main, 'Deployment', 'nginx'), 'gate-files');
    const auth = container(named(main, 'Deployment', 'auth'), 'auth');
    expect(refs(init)).toEqual(refs(auth));
    expect(refs(auth)).toEqual(['gateway-secrets', 'gateway-settings']);
    expect(init.env).toBeUndefined();
    expect(auth.env).toBeUndefined();
    // The nginx container itself gets no secret.
    expect(container(named(main, 'Deployment', 'nginx'), 'nginx').envFrom).toBeUndefined();
    expect(settings.GATE_CONFIG_FILE).toBe(environmentOf(container(named(main, 'Deployment', 'nginx'), 'nginx')).GATE_CONFIG_FILE);
  });
});

describe('deploy/kubernetes: volumes carry the gate config and nginx config where the programs look', () => {
  const nginxDeployment = named(main, 'Deployment', 'nginx');
  const mountOf = (c: any, mountPath: string) => (c.volumeMounts ?? []).find((m: any) => m.mountPath === mountPath);

  it('shares one in-memory volume from the init container to nginx, at the directory of GATE_CONFIG_FILE', () => {
    const dir = path.posix.dirname(generator('gateway-settings').data.GATE_CONFIG_FILE!);
    const init = mountOf(container(nginxDeployment, 'gate-files'), dir);
    const nginx = mountOf(container(nginxDeployment, 'nginx'), dir);
    expect(init.name).toBe(nginx.name);
    expect(init.readOnly).toBeUndefined();
    expect(nginx.readOnly).toBe(true);
    expect(podSpec(nginxDeployment).volumes.find((v: any) => v.name === init.name).emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' });
  });

  it('mounts POLICY_FILE and the site template from generated ConfigMap keys, over files the image really has', () => {
    const policyFile = generator('gateway-settings').data.POLICY_FILE!;
    for (const [deployment, name] of [
      ['nginx', 'gate-files'],
      ['auth', 'auth'],
    ] as const) {
      const d = named(main, 'Deployment', deployment);
      const m = mountOf(container(d, name), policyFile);
      const volume = podSpec(d).volumes.find((v: any) => v.name === m.name);
      expect(generator(volume.configMap.name).data[m.subPath]).toBeDefined();
    }
    const site = mountOf(container(nginxDeployment, 'nginx'), '/etc/gateway/nginx/sites/gateway.conf.template');
    expect(generator('gateway-nginx').data[site.subPath]).toBeDefined();
    // The image carries the repo's nginx/ at /etc/gateway/nginx (docker/nginx.Dockerfile), and the
    // entrypoint reads it from there; the mount replaces the repo's own site file.
    expect(read('docker/nginx.Dockerfile')).toMatch(/^COPY nginx\/ \/etc\/gateway\/nginx\/$/m);
    expect(read('docker/nginx-entrypoint.sh')).toContain('SOURCE=${GATEWAY_NGINX_SOURCE:-/etc/gateway/nginx}');
    expect(fs.existsSync(path.join(ROOT, 'nginx/sites/gateway.conf.template'))).toBe(true);
  });

  it("renders the site template with the entrypoint's variables only, and includes snippets the image has", () => {
    const template = generator('gateway-nginx').data['gateway.conf.template']!;
    const substituted = /^TEMPLATE_VARS='([^']*)'$/m.exec(read('docker/nginx-entrypoint.sh'))![1]!.split(' ');
    for (const m of template.matchAll(/\$\{(\w+)\}/g)) expect(substituted).toContain(`\${${m[1]}}`);
    const includes = [...template.matchAll(/^\s*include (\S+);/gm)].map((m) => m[1]!);
    expect(includes.length).toBeGreaterThan(0);
    for (const inc of includes) {
      // snippets/<name>.d/*.conf is rendered at start-up from the folder nginx/<name>/ (e.g. upstream-tls.d).
      const rendered = /^snippets\/([\w-]+)\.d\/[^/]+$/.exec(inc);
      const source = rendered === null ? path.join(ROOT, 'nginx', inc) : path.join(ROOT, 'nginx', rendered[1]!);
      expect({ inc, exists: fs.existsSync(source) || fs.existsSync(`${source}.template`) }).toEqual({ inc, exists: true });
    }
  });

  it('rolls the Deployments on a change: every ConfigMap and Secret they use is generated (hashed name)', () => {
    for (const d of byKind(main, 'Deployment')) {
      const names = [
        ...allContainers(d).flatMap((c) => (c.envFrom ?? []).map((f: any) => (f.configMapRef ?? f.secretRef).name)),
        ...(podSpec(d).volumes ?? []).filter((v: any) => v.configMap || v.secret).map((v: any) => v.configMap?.name ?? v.secret.secretName),
      ];
      for (const name of names) expect(main.generated.map((g) => g.name)).toContain(name);
    }
  });
});

describe('deploy/kubernetes: probes hit endpoints the containers serve', () => {
  const probesOf = (c: any) => [c.readinessProbe, c.livenessProbe].filter(Boolean);

  it('gives every long-running container a readiness and a liveness probe on a declared port', () => {
    for (const w of [...byKind(main, 'Deployment'), ...byKind(postgres, 'StatefulSet')]) {
      for (const c of podSpec(w).containers) {
        expect(probesOf(c)).toHaveLength(2);
        for (const p of probesOf(c)) {
          const port = p.httpGet?.port ?? p.tcpSocket?.port;
          if (port !== undefined) expect(c.ports.map((x: { name: string }) => x.name)).toContain(port);
        }
      }
    }
  });

  it("probes the auth service's liveness (200 even with the store down) and readiness (503 then, 200 once ready)", async () => {
    const auth = container(named(main, 'Deployment', 'auth'), 'auth');
    let ready = false;
    const app = express().use(createHealthRouter({ storeReady: () => ready }));
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const status = async (p: string) => (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${p}`)).status;
    try {
      expect(await status(auth.livenessProbe.httpGet.path)).toBe(200);
      expect(await status(auth.readinessProbe.httpGet.path)).toBe(503);
      ready = true;
      expect(await status(auth.readinessProbe.httpGet.path)).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("answers 200 on the demo app's probe path", async () => {
    const paths = new Set(probesOf(container(named(main, 'Deployment', 'demo-app'), 'demo-app')).map((p) => p.httpGet.path as string));
    const app = await startDemoApp();
    try {
      for (const p of paths) expect((await fetch(`http://127.0.0.1:${app.port}${p}`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('stops nginx gracefully: SIGQUIT to the master, which the entrypoint execs as PID 1', () => {
    const nginx = container(named(main, 'Deployment', 'nginx'), 'nginx');
    expect(nginx.lifecycle.preStop.exec.command.join(' ')).toContain('kill -QUIT 1');
    expect(read('docker/nginx-entrypoint.sh')).toMatch(/^\s+exec nginx -p /m);
    expect(read('docker/nginx.Dockerfile')).toMatch(/^STOPSIGNAL SIGQUIT$/m);
  });

  it("probes nginx on the gateway's own health location, which the pod's site includes, never through the app", () => {
    const nginx = container(named(main, 'Deployment', 'nginx'), 'nginx');
    for (const p of probesOf(nginx)) expect(p.httpGet).toEqual({ path: '/_gate/health', port: 'http' });
    expect(read('deploy/kubernetes/nginx/gateway.conf.template')).toMatch(/^\s+include snippets\/gate-server\.conf;$/m);
    expect(read('nginx/snippets/gate-server.conf')).toMatch(/^location = \/_gate\/health \{\n(?:(?!\n\}).)*return 200 /ms);
  });
});

describe('deploy/kubernetes: security contexts fit the "baseline" Pod Security Standard', () => {
  // https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline: capabilities).
  const BASELINE_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];
  const workloads = [...byKind(main, 'Deployment'), ...byKind(postgres, 'StatefulSet')];

  it('drops every capability, adds back only baseline ones, and never allows privilege escalation', () => {
    for (const w of workloads) {
      expect(w.spec.template.spec.automountServiceAccountToken).toBe(false);
      for (const c of allContainers(w)) {
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
        expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
        for (const cap of c.securityContext.capabilities.add ?? []) expect(BASELINE_CAPABILITIES).toContain(cap);
      }
    }
  });

  it('runs as root only where nginx needs it: its master, and the init container writing root-only files', () => {
    const asRoot = workloads.flatMap((w) =>
      allContainers(w)
        .filter((c) => (c.securityContext.runAsUser ?? podSpec(w).securityContext?.runAsUser ?? 0) === 0)
        .map((c) => `${w.metadata.name}/${c.name}`),
    );
    expect(asRoot.sort()).toEqual(['nginx/gate-files', 'nginx/nginx']);
    expect(container(named(main, 'Deployment', 'nginx'), 'gate-files').securityContext.capabilities.add).toBeUndefined();
  });
});

describe('deploy/kubernetes: availability and scaling', () => {
  it('sets resource requests on every container, init containers included', () => {
    for (const w of [...byKind(main, 'Deployment'), ...byKind(postgres, 'StatefulSet')]) {
      for (const c of allContainers(w)) {
        expect(c.resources.requests.cpu).toBeDefined();
        expect(c.resources.requests.memory).toBeDefined();
      }
    }
  });

  it('scales nginx with an HPA, and keeps nginx and auth up through voluntary disruptions', () => {
    const hpa = named(main, 'HorizontalPodAutoscaler', 'nginx');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'nginx' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    for (const name of ['nginx', 'auth']) {
      const pdb = named(main, 'PodDisruptionBudget', name);
      expect(pdb.spec.selector.matchLabels).toEqual(named(main, 'Deployment', name).spec.selector.matchLabels);
      expect(named(main, 'Deployment', name).spec.replicas).toBeGreaterThan(pdb.spec.minAvailable);
    }
  });
});

describe('deploy/kubernetes: NetworkPolicies allow only ingress -> nginx -> auth and app, auth -> PostgreSQL', () => {
  const policies = [...byKind(main, 'NetworkPolicy'), ...byKind(postgres, 'NetworkPolicy')];
  const nameOf = (selector: any) => selector?.matchLabels?.['app.kubernetes.io/name'] ?? (selector && Object.keys(selector).length === 0 ? '*' : undefined);
  const flows = (direction: 'ingress' | 'egress') =>
    policies
      .flatMap((p) =>
        (p.spec[direction] ?? []).flatMap((rule: any) => {
          const peers = rule[direction === 'ingress' ? 'from' : 'to'] ?? [{ any: true }];
          return peers.flatMap((peer: any) => {
            const other = peer.any ? 'anywhere' : peer.podSelector ? nameOf(peer.podSelector) : `namespace:${peer.namespaceSelector.matchLabels['kubernetes.io/metadata.name']}`;
            return (rule.ports ?? [{ port: 'any' }]).map((port: any) =>
              direction === 'ingress' ? `${other} -> ${nameOf(p.spec.podSelector)}:${port.port}` : `${nameOf(p.spec.podSelector)} -> ${other}:${port.port}`,
            );
          });
        }),
      )
      .sort();

  it('denies everything by default, both ways', () => {
    const deny = named(main, 'NetworkPolicy', 'default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  });

  it('allows exactly these connections in', () => {
    expect(flows('ingress')).toEqual(['auth -> postgres:5432', 'namespace:ingress-nginx -> nginx:8080', 'nginx -> auth:3001', 'nginx -> demo-app:5000'].sort());
  });

  it('allows exactly these connections out (PostgreSQL is external: port 5432, any address)', () => {
    expect(flows('egress')).toEqual(['* -> namespace:kube-system:53', '* -> namespace:kube-system:53', 'auth -> anywhere:5432', 'nginx -> auth:3001', 'nginx -> demo-app:5000'].sort());
  });
});
