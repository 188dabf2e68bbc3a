import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { configVariables } from './config-variables.ts';

const dir = path.resolve(import.meta.dirname, '../../deploy/kubernetes');
// Manifests are untyped YAML.
type Manifest = any;
const manifests: Manifest[] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((doc) => {
      expect(doc.errors, f).toEqual([]);
      return doc.toJS();
    }),
  );
const byKind = (kind: string) => {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};

const API_VERSIONS: Record<string, string> = {
  Deployment: 'apps/v1',
  Service: 'v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  PodDisruptionBudget: 'policy/v1',
  ConfigMap: 'v1',
  Secret: 'v1',
};

describe('Kubernetes manifests', () => {
  it('has each kind once with a current apiVersion', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(Object.keys(API_VERSIONS).sort());
    for (const m of manifests) expect(m.apiVersion, m.kind).toBe(API_VERSIONS[m.kind]);
    const kustomization = parseAllDocuments(
      readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'),
    )[0]!.toJS();
    expect(kustomization.resources.sort()).toEqual(
      readdirSync(dir)
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .sort(),
    );
  });

  it('probes /health/live and /health/ready on the container port', () => {
    const container = byKind('Deployment').spec.template.spec.containers[0];
    expect(container.livenessProbe.httpGet.path).toBe('/health/live');
    expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
    expect(container.startupProbe.httpGet.path).toBe('/health/live');
    const portNames = container.ports.map((p: Manifest) => p.name);
    for (const probe of [container.livenessProbe, container.readinessProbe])
      expect(portNames).toContain(probe.httpGet.port);
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.requests.memory).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
  });

  it('runs non-root on a read-only root filesystem with every capability dropped', () => {
    const pod = byKind('Deployment').spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    const container = pod.containers[0];
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    // The only writable paths are volumes: the data dir (spool) and /tmp.
    const mounts = container.volumeMounts.map((m: Manifest) => m.mountPath).sort();
    expect(mounts).toEqual(['/tmp', '/var/lib/verdict']);
    const config = byKind('ConfigMap').data;
    expect(config.VERDICT_DATA_DIR).toBe('/var/lib/verdict');
  });

  it('gives shutdown room: grace period longer than drain plus the shutdown deadline', () => {
    const pod = byKind('Deployment').spec.template.spec;
    const config = byKind('ConfigMap').data;
    const needed =
      (Number(config.VERDICT_SHUTDOWN_DRAIN_MS) + Number(config.VERDICT_SHUTDOWN_TIMEOUT_MS)) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(needed);
  });

  it('selectors and labels agree across Deployment, Service and PodDisruptionBudget; the HPA targets the Deployment', () => {
    const deployment = byKind('Deployment');
    const labels = deployment.spec.template.metadata.labels;
    const matches = (selector: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(deployment.spec.selector.matchLabels)).toBe(true);
    expect(matches(byKind('Service').spec.selector)).toBe(true);
    expect(matches(byKind('PodDisruptionBudget').spec.selector.matchLabels)).toBe(true);
    const hpa = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThan(byKind('PodDisruptionBudget').spec.minAvailable);
    const ports = deployment.spec.template.spec.containers[0].ports.map((p: Manifest) => p.name);
    expect(ports).toContain(byKind('Service').spec.ports[0].targetPort);
  });

  it('names only environment variables the service reads, from the ConfigMap and Secret it ships', () => {
    const known = configVariables();
    const container = byKind('Deployment').spec.template.spec.containers[0];
    const refs = container.envFrom.map((e: Manifest) => e.configMapRef?.name ?? e.secretRef?.name).sort();
    expect(refs).toEqual([byKind('ConfigMap').metadata.name, byKind('Secret').metadata.name].sort());
    const names = [
      ...container.env.map((e: Manifest) => e.name),
      ...Object.keys(byKind('ConfigMap').data),
      ...Object.keys(byKind('Secret').stringData),
    ];
    for (const name of names) expect(known, name).toContain(name);
  });
});

describe('docker-compose', () => {
  it('runs Postgres, Redis, two Verdict replicas, Prometheus and Grafana with provisioning, using real settings', () => {
    const file = path.resolve(dir, '../docker-compose.yml');
    const compose = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true })[0]!.toJS({
      maxAliasCount: 100,
    });
    const services = Object.keys(compose.services).sort();
    expect(services).toEqual(['grafana', 'postgres', 'prometheus', 'redis', 'verdict-1', 'verdict-2']);
    const known = configVariables();
    for (const name of ['verdict-1', 'verdict-2']) {
      const service = compose.services[name];
      expect(service.read_only).toBe(true);
      expect(service.environment.DATABASE_URL).toMatch(/@postgres:5432\//);
      expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
      for (const variable of Object.keys(service.environment)) expect(known, variable).toContain(variable);
    }
    const prometheus = parseAllDocuments(
      readFileSync(path.resolve(dir, '../prometheus/prometheus.yml'), 'utf8'),
    )[0]!.toJS();
    const targets = prometheus.scrape_configs.flatMap((c: Manifest) =>
      c.static_configs.flatMap((s: Manifest) => s.targets),
    );
    expect(targets.sort()).toEqual(['verdict-1:8080', 'verdict-2:8080']);
    expect(prometheus.rule_files).toContain('/etc/prometheus/alerts.yml');
    const mounts = compose.services.grafana.volumes.join('\n');
    expect(mounts).toContain('provisioning/datasources');
    expect(mounts).toContain('provisioning/dashboards');
    expect(mounts).toContain('verdict.json');
  });
});
