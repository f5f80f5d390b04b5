import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { parse as parseYaml } from 'yaml'
import { buildApp } from '../../src/app.js'
import { ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config/load.js'
import {
  KUBERNETES_DIR, MiB, ROOT, configFromEnvironment, containerEnvironment, imageEnvironment, kubernetesObjects, only,
  proxyContainers, quantity, readYamlDocuments, selects, yamlFiles,
  type Container, type Deployment, type HorizontalPodAutoscaler, type KubernetesObject, type LabelSelector, type NetworkPolicy, type ObjectMeta,
  type PodDisruptionBudget, type PodSpec, type Probe, type SecurityContext, type Service
} from './manifests.js'

/** What was measured of one proxy process (Node 24 with the image's node flags, docs/PERFORMANCE.md): resident memory at rest and under 50 connections, CPU at rest. */
const MEASURED = { restRssMiB: 102, loadedRssMiB: 136, restCpu: 0.05 }
const FOLDERS = ['sidecar', 'gateway', 'monitoring'] as const
/** The folders whose Deployments run the proxy. */
const PROXY_FOLDERS = ['sidecar', 'gateway'] as const

t.test('every file under deploy/kubernetes parses, and every document is a named object', async (t) => {
  const files = yamlFiles(KUBERNETES_DIR)
  t.ok(files.length >= 8, `${files.length} YAML files`)
  for (const file of files) {
    const documents = readYamlDocuments(file)
    t.ok(documents.length > 0, `${file}: at least one document`)
    for (const document of documents) {
      t.same(document.errors, [], `${document.file}#${document.index}: no YAML error or warning`)
      const object = document.value as KubernetesObject
      t.type(object.apiVersion, 'string', `${document.file}#${document.index}: apiVersion`)
      t.type(object.kind, 'string', `${document.file}#${document.index}: kind`)
      if (object.kind !== 'Kustomization') t.type(object.metadata?.name, 'string', `${document.file}#${document.index}: metadata.name`)
      t.notOk(object.metadata?.namespace, `${document.file}#${document.index}: no namespace (kubectl -n chooses)`)
    }
  }
})

t.test('each kustomization lists every manifest beside it, and only existing ones', async (t) => {
  for (const folder of FOLDERS) {
    const directory = join(KUBERNETES_DIR, folder)
    const kustomization = parseYaml(readFileSync(join(directory, 'kustomization.yaml'), 'utf8')) as { resources: string[] }
    const manifests = yamlFiles(directory).map((f) => basename(f)).filter((f) => f !== 'kustomization.yaml')
    t.same([...kustomization.resources].sort(), manifests, `${folder}: resources`)
    for (const resource of kustomization.resources) t.ok(existsSync(join(directory, resource)), `${folder}/${resource} exists`)
  }
})

/** Every proxy container of every Deployment, with its pod and the environment the process gets (image ENV + manifest env). */
function proxies (): Array<{ where: string, deployment: Deployment, pod: PodSpec, container: Container, env: Record<string, string> }> {
  return PROXY_FOLDERS.flatMap((folder) => only<Deployment>(kubernetesObjects(folder), 'Deployment').flatMap((deployment) => {
    const pod = deployment.spec.template.spec
    return proxyContainers(pod).map((container) => ({
      where: `${folder}/${deployment.metadata.name ?? '?'}`,
      deployment,
      pod,
      container,
      env: { ...imageEnvironment(), ...containerEnvironment(container) }
    }))
  }))
}

t.test('there is one proxy container in the sidecar and one in the gateway Deployment', async (t) => {
  t.same(proxies().map((p) => p.where), ['sidecar/example-app', 'gateway/pave-proxy'])
})

t.test('every environment name exists in the config schema, and the environment is a valid configuration', async (t) => {
  for (const { where, container, env } of proxies()) {
    for (const variable of container.env ?? []) {
      t.ok(ENVIRONMENT_VARIABLES.includes(variable.name), `${where}: ${variable.name} is read by pave-proxy`)
      t.ok((variable.value !== undefined) !== (variable.valueFrom !== undefined), `${where}: ${variable.name} has a value or a valueFrom`)
    }
    t.notOk('PAVE_API_SECRET' in env, `${where}: the API secret never travels as an environment variable`)
    const config = configFromEnvironment(env)
    t.equal(config.host, '0.0.0.0', `${where}: listens on the pod's interfaces (probes come to the pod IP)`)
    t.same(container.ports?.map((p) => p.containerPort), [config.port, config.metrics.port], `${where}: the declared ports are the ones it listens on (the proxy, then the metrics listener)`)
    t.not(config.metrics.port, undefined, `${where}: /metrics on a port of its own`)
    t.equal(config.upstream.url, 'https://openapi.paveapi.com', `${where}: upstream`)
  }
})

t.test('the API secret is a mounted Secret file (rotation works): no subPath, read-only, only in the proxy container', async (t) => {
  for (const { where, pod, container, env } of proxies()) {
    const secretFile = env.PAVE_API_SECRET_FILE ?? ''
    t.match(secretFile, /^\//, `${where}: PAVE_API_SECRET_FILE is an absolute path`)
    const mount = container.volumeMounts?.find((m) => m.mountPath === dirname(secretFile))
    t.ok(mount, `${where}: a volume is mounted at ${dirname(secretFile)}`)
    t.equal(mount?.readOnly, true, `${where}: read-only mount`)
    t.equal(mount?.subPath, undefined, `${where}: no subPath (a subPath mount never sees an update)`)
    const volume = pod.volumes?.find((v) => v.name === mount?.name)
    t.ok(volume?.secret, `${where}: the volume is a Secret`)
    t.ok(volume?.secret?.items?.some((item) => item.path === basename(secretFile)), `${where}: the Secret projects ${basename(secretFile)}`)
    t.equal((volume?.secret?.defaultMode ?? 0o644) & 0o007, 0, `${where}: not readable by others`)
    for (const variable of container.env ?? []) {
      const ref = variable.valueFrom?.secretKeyRef
      if (ref !== undefined) t.equal(ref.name, volume?.secret?.secretName, `${where}: ${variable.name} comes from the same Secret`)
    }
    for (const other of [...(pod.initContainers ?? []), ...pod.containers].filter((c) => c !== container)) {
      t.notOk(other.volumeMounts?.some((m) => m.name === mount?.name), `${where}: container ${other.name} does not mount the credentials`)
      t.notOk(other.env?.some((v) => v.valueFrom?.secretKeyRef?.name === volume?.secret?.secretName), `${where}: container ${other.name} gets no credentials`)
    }
  }
})

/** The port number a probe or a Service targets, resolving a port name. */
function portNumber (container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find((p) => p.name === port)?.containerPort
}

t.test('probes: startup and liveness on /healthz, readiness on /readyz, on the proxy port', async (t) => {
  for (const { where, container, env } of proxies()) {
    const port = configFromEnvironment(env).port
    const probes: Array<[string, Probe | undefined, string]> = [
      ['startupProbe', container.startupProbe, '/healthz'],
      ['livenessProbe', container.livenessProbe, '/healthz'],
      ['readinessProbe', container.readinessProbe, '/readyz']
    ]
    for (const [name, probe, path] of probes) {
      t.equal(probe?.httpGet?.path, path, `${where}: ${name} path`)
      t.equal(portNumber(container, probe?.httpGet?.port), port, `${where}: ${name} port`)
    }
    t.ok((container.livenessProbe?.timeoutSeconds ?? 1) >= 2, `${where}: liveness waits as long as the image's HEALTHCHECK client (2 s)`)
  }
})

t.test('every probe path exists in the app and answers 200', async (t) => {
  const paths = new Set<string>()
  for (const { container } of proxies()) {
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      if (probe?.httpGet?.path !== undefined) paths.add(probe.httpGet.path)
    }
  }
  t.same([...paths].sort(), ['/healthz', '/readyz'])
  const sink = new Writable({ write: (_chunk, _encoding, callback) => { callback() } })
  const app = await buildApp(loadConfig({
    env: { PAVE_USERNAME: 'u', PAVE_API_KEY: 'k', PAVE_API_SECRET: 's', PAVE_UPSTREAM_URL: 'http://127.0.0.1:9' },
    argv: []
  }), { logStream: sink })
  t.teardown(() => app.close())
  for (const path of paths) {
    const response = await app.inject({ url: path })
    t.equal(response.statusCode, 200, `GET ${path}`)
  }
})

/** The container's security context over the pod's, as the kubelet applies it. */
function effectiveSecurity (pod: PodSpec, container: Container): SecurityContext {
  return { ...pod.securityContext, ...container.securityContext }
}

t.test('security: non-root, read-only root filesystem, no capabilities, no privilege escalation, seccomp RuntimeDefault', async (t) => {
  for (const { where, pod, container } of proxies()) {
    const security = effectiveSecurity(pod, container)
    t.equal(security.runAsNonRoot, true, `${where}: runAsNonRoot`)
    t.ok(security.runAsUser !== undefined && security.runAsUser !== 0, `${where}: runAsUser ${String(security.runAsUser)}`)
    t.equal(security.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`)
    t.equal(security.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`)
    t.notOk(security.privileged, `${where}: not privileged`)
    t.same(security.capabilities?.drop, ['ALL'], `${where}: drops all capabilities`)
    t.notOk(security.capabilities?.add, `${where}: adds none`)
    t.equal(security.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp`)
    t.equal(pod.automountServiceAccountToken, false, `${where}: no service account token (the proxy never calls the API server)`)
    t.equal(pod.enableServiceLinks, false, `${where}: no service-link variables`)
  }
})

t.test('resources: requests and limits for CPU and memory, consistent with what was measured', async (t) => {
  for (const { where, container } of proxies()) {
    const { requests = {}, limits = {} } = container.resources ?? {}
    for (const resource of ['cpu', 'memory']) {
      t.ok(quantity(requests[resource]) > 0, `${where}: ${resource} request ${requests[resource] ?? '-'}`)
      t.ok(quantity(limits[resource]) >= quantity(requests[resource]), `${where}: ${resource} limit ${limits[resource] ?? '-'} ≥ request`)
    }
    t.ok(quantity(requests.memory) >= MEASURED.restRssMiB * MiB, `${where}: the memory request covers the resident size at rest`)
    t.ok(quantity(limits.memory) >= 1.25 * MEASURED.loadedRssMiB * MiB, `${where}: the memory limit leaves ≥ 25 % over the loaded peak`)
    t.ok(quantity(requests.cpu) >= MEASURED.restCpu, `${where}: the CPU request covers the process at rest`)
    t.ok(quantity(limits.cpu) >= 0.5, `${where}: the CPU limit leaves room for bursts (throttling adds latency)`)
  }
})

t.test('the grace period outlasts the drain the proxy is configured for', async (t) => {
  for (const { where, pod, container, env } of proxies()) {
    const { delayMs, timeoutMs } = configFromEnvironment(env).shutdown
    const grace = pod.terminationGracePeriodSeconds ?? 30
    // A native sidecar is signalled only after the app containers have exited: their
    // preStop time comes first, out of the same grace period.
    const before = container.restartPolicy === 'Always'
      ? Math.max(0, ...pod.containers.map((c) => c.lifecycle?.preStop?.sleep?.seconds ?? 0))
      : 0
    const needed = before + (delayMs + timeoutMs) / 1000 + 5
    t.ok(grace >= needed, `${where}: terminationGracePeriodSeconds ${grace} ≥ ${needed} (app preStop ${before} s + delay ${delayMs} ms + drain ${timeoutMs} ms + 5 s)`)
    t.ok(grace >= 40, `${where}: at least 40 s`)
  }
})

t.test('sidecar: a native sidecar that only the pod itself can use for proxying', async (t) => {
  const [deployment] = only<Deployment>(kubernetesObjects('sidecar'), 'Deployment')
  const pod = deployment?.spec.template.spec
  const proxy = pod?.initContainers?.find((c) => c.name === 'pave-proxy')
  t.equal(proxy?.restartPolicy, 'Always', 'an init container with restartPolicy Always (native sidecar)')
  t.notOk(pod?.containers.some((c) => c.name === 'pave-proxy'), 'not also an ordinary container')
  t.ok(proxy?.startupProbe, 'a startup probe, so the app starts once the proxy answers')
  const config = configFromEnvironment({ ...imageEnvironment(), ...containerEnvironment(proxy as Container) })
  t.same(config.inbound.allow, ['127.0.0.1/32', '::1/128'], 'proxied calls only from the pod\'s loopback (probes stay open)')
  t.equal(config.shutdown.delayMs, 0, 'no readiness delay: the app has exited when the sidecar is signalled')
  const app = pod?.containers.find((c) => c.name === 'app')
  t.equal(app?.env?.find((v) => v.name === 'PAVE_BASE_URL')?.value, `http://127.0.0.1:${config.port}`, 'the app calls the proxy on loopback')
  t.notOk(app?.ports?.some((p) => p.containerPort === config.port), 'the app does not use the proxy\'s port')
})

t.test('gateway: Service, autoscaler, disruption budget and network policy all select the proxy pods', async (t) => {
  const objects = kubernetesObjects('gateway')
  const [deployment] = only<Deployment>(objects, 'Deployment')
  const [service] = only<Service>(objects, 'Service')
  const [hpa] = only<HorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler')
  const [pdb] = only<PodDisruptionBudget>(objects, 'PodDisruptionBudget')
  const [policy] = only<NetworkPolicy>(objects, 'NetworkPolicy')
  if (deployment === undefined || service === undefined || hpa === undefined || pdb === undefined || policy === undefined) {
    t.fail('the gateway has a Deployment, a Service, an HPA, a PDB and a NetworkPolicy')
    return
  }
  const podLabels = deployment.spec.template.metadata.labels
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'pave-proxy') as Container
  const config = configFromEnvironment({ ...imageEnvironment(), ...containerEnvironment(container) })
  t.ok(selects(deployment.spec.selector, podLabels), 'the Deployment selects its pods')

  t.ok(selects(service.spec.selector, podLabels), 'the Service selects the pods')
  const servicePort = (name: string): number | undefined => portNumber(container, service.spec.ports.find((p) => p.name === name)?.targetPort)
  t.same(service.spec.ports.map((p) => p.name), ['http', 'metrics'], 'the Service offers the proxy and the metrics port')
  t.equal(servicePort('http'), config.port, 'Service port http → the proxy port')
  t.equal(servicePort('metrics'), config.metrics.port, 'Service port metrics → the metrics listener')
  // A Service named pave-proxy would put PAVE_PROXY_PORT, PAVE_PROXY_SERVICE_HOST, … in pods' environments (service links).
  const linked = service.metadata.name?.toUpperCase().replace(/-/g, '_') ?? ''
  t.same(ENVIRONMENT_VARIABLES.filter((name) => name === `${linked}_PORT` || name.startsWith(`${linked}_PORT_`) || name.startsWith(`${linked}_SERVICE_`)), [],
    'no setting of the proxy collides with a service-link variable')

  t.equal(deployment.spec.replicas, undefined, 'the Deployment leaves the replica count to the autoscaler')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name }, 'the HPA scales the Deployment')
  t.ok((hpa.spec.minReplicas ?? 1) >= 2, `several replicas: at least ${String(hpa.spec.minReplicas)}`)
  t.ok(hpa.spec.maxReplicas > (hpa.spec.minReplicas ?? 1), 'room to scale out')
  t.ok(container.resources?.requests?.cpu, 'a CPU request, which CPU utilisation is measured against')

  t.ok(selects(pdb.spec.selector, podLabels), 'the PDB selects the pods')
  t.ok(typeof pdb.spec.maxUnavailable === 'number' && pdb.spec.maxUnavailable < (hpa.spec.minReplicas ?? 1), 'the PDB keeps some replicas through a drain')

  t.ok(selects(policy.spec.podSelector, podLabels), 'the NetworkPolicy applies to the pods')
  t.same(policy.spec.policyTypes, ['Ingress', 'Egress'])
  const peers = (policy.spec.ingress ?? []).flatMap((rule) => rule.from ?? [])
  t.ok(peers.length > 0 && (policy.spec.ingress ?? []).every((rule) => (rule.from ?? []).length > 0), 'no ingress rule admits everyone')
  for (const peer of peers) {
    t.notOk(peer.ipBlock, 'no address blocks: callers are pods')
    t.ok(Object.keys(peer.podSelector?.matchLabels ?? {}).length > 0, 'every caller is selected by a pod label')
  }
  const ingress = policy.spec.ingress ?? []
  const clients = ingress.filter((rule) => (rule.from ?? []).every((peer) => peer.podSelector?.matchLabels?.['pave-proxy/client'] === 'true'))
  const scrapers = ingress.filter((rule) => !clients.includes(rule))
  t.equal(clients.length, 1, 'one rule for the clients, labelled pave-proxy/client=true')
  t.same(clients[0]?.ports?.map((p) => p.port), [config.port], 'clients reach the proxy port only')
  t.equal(scrapers.length, 1, 'one rule for Prometheus')
  t.same(scrapers[0]?.ports?.map((p) => p.port), [config.metrics.port], 'Prometheus reaches the metrics port only, never the proxy port')
  for (const peer of scrapers[0]?.from ?? []) {
    t.equal(peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'], 'monitoring', 'from the monitoring namespace')
    t.equal(peer.podSelector?.matchLabels?.['app.kubernetes.io/name'], 'prometheus', 'and only its Prometheus pods (both selectors in one peer)')
  }
  const upstream = new URL(config.upstream.url)
  const upstreamPort = Number(upstream.port !== '' ? upstream.port : upstream.protocol === 'https:' ? 443 : 80)
  const egressPorts = (policy.spec.egress ?? []).flatMap((rule) => rule.ports?.map((p) => p.port) ?? [])
  t.ok(egressPorts.includes(53), 'egress to DNS')
  t.ok(egressPorts.includes(upstreamPort), `egress to the upstream port ${upstreamPort}`)
})

interface MonitorEndpoint { port?: string, path?: string, interval?: string, scrapeTimeout?: string }
interface ServiceMonitor { kind: 'ServiceMonitor', metadata: ObjectMeta, spec: { selector: LabelSelector, endpoints: MonitorEndpoint[] } }
interface PodMonitor { kind: 'PodMonitor', metadata: ObjectMeta, spec: { selector: LabelSelector, podMetricsEndpoints: MonitorEndpoint[] } }
interface AlertRule { alert?: string, record?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface PrometheusRule { kind: 'PrometheusRule', metadata: ObjectMeta, spec: { groups: Array<{ name: string, rules: AlertRule[] }> } }

/** Seconds of a Prometheus duration such as `15s` or `1m`. */
function seconds (duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(duration ?? '')
  if (match === null) return NaN
  return Number(match[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as Record<string, number>)[match[2] as string]!
}

t.test('monitoring: the ServiceMonitor scrapes the gateway\'s metrics port, the PodMonitor the sidecar\'s', async (t) => {
  const monitoring = kubernetesObjects('monitoring')
  const [serviceMonitor] = only<ServiceMonitor>(monitoring, 'ServiceMonitor')
  const [podMonitor] = only<PodMonitor>(monitoring, 'PodMonitor')
  const gateway = kubernetesObjects('gateway')
  const [service] = only<Service>(gateway, 'Service')
  const [deployment] = only<Deployment>(gateway, 'Deployment')
  const [sidecarApp] = only<Deployment>(kubernetesObjects('sidecar'), 'Deployment')
  if (serviceMonitor === undefined || podMonitor === undefined || service === undefined || deployment === undefined || sidecarApp === undefined) {
    t.fail('a ServiceMonitor, a PodMonitor, the gateway Service and Deployment, the sidecar Deployment')
    return
  }
  const [gatewayProxy] = proxyContainers(deployment.spec.template.spec)
  const gatewayConfig = configFromEnvironment({ ...imageEnvironment(), ...containerEnvironment(gatewayProxy as Container) })
  t.ok(selects(serviceMonitor.spec.selector, service.metadata.labels), 'the ServiceMonitor selects the gateway Service')
  t.same(serviceMonitor.spec.endpoints.map((e) => e.port), ['metrics'], 'one endpoint: the Service\'s metrics port')
  const metricsPort = service.spec.ports.find((p) => p.name === 'metrics')
  t.equal(portNumber(gatewayProxy as Container, metricsPort?.targetPort), gatewayConfig.metrics.port, 'which is the proxy\'s metrics listener')

  const sidecarPod = sidecarApp.spec.template
  const [sidecarProxy] = proxyContainers(sidecarPod.spec)
  const sidecarConfig = configFromEnvironment({ ...imageEnvironment(), ...containerEnvironment(sidecarProxy as Container) })
  t.ok(selects(podMonitor.spec.selector, sidecarPod.metadata.labels), 'the PodMonitor selects the app\'s pods')
  t.same(podMonitor.spec.podMetricsEndpoints.map((e) => portNumber(sidecarProxy as Container, e.port)), [sidecarConfig.metrics.port], 'and scrapes the sidecar\'s metrics listener')

  for (const endpoint of [...serviceMonitor.spec.endpoints, ...podMonitor.spec.podMetricsEndpoints]) {
    t.equal(endpoint.path, '/metrics')
    t.ok(seconds(endpoint.scrapeTimeout) < seconds(endpoint.interval), `scrape timeout ${String(endpoint.scrapeTimeout)} below the interval ${String(endpoint.interval)}`)
  }
})

t.test('monitoring: every alert has a severity, a summary, a description and a runbook line in the README, and is unit-tested', async (t) => {
  const [rule] = only<PrometheusRule>(kubernetesObjects('monitoring'), 'PrometheusRule')
  const alerts = (rule?.spec.groups ?? []).flatMap((group) => group.rules).filter((r) => r.alert !== undefined)
  t.same(alerts.map((a) => a.alert), [
    'PaveProxyPaveRefusingSignatures', 'PaveProxyClockOffsetHigh', 'PaveProxyPaveUnreachable', 'PaveProxyOverloaded',
    'PaveProxyCallerRateLimited', 'PaveProxyConfigReloadRejected', 'PaveProxyNoSuccessfulRequests'
  ], 'the alerts a PAVE integrator needs')
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const monitoring = readme.slice(readme.indexOf('## Monitoring'))
  const unitTests = parseYaml(readFileSync(join(ROOT, 'test', 'monitoring', 'alerts.test.yaml'), 'utf8')) as {
    tests: Array<{ alert_rule_test: Array<{ alertname: string, exp_alerts: unknown[] }> }>
  }
  const cases = unitTests.tests.flatMap((test) => test.alert_rule_test)
  for (const alert of alerts) {
    const name = alert.alert as string
    t.ok(['critical', 'warning'].includes(alert.labels?.severity ?? ''), `${name}: severity critical or warning`)
    for (const key of ['summary', 'description', 'runbook']) t.ok((alert.annotations?.[key] ?? '').length > 10, `${name}: ${key}`)
    t.match(alert.annotations?.runbook, new RegExp(`^README\\.md#${name.toLowerCase()}: `), `${name}: the runbook line points at its README section`)
    t.match(monitoring, new RegExp(`\\n#### ${name}\\n`), `${name}: a runbook section in the README's "Monitoring"`)
    t.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length > 0), `${name}: a unit test where it fires`)
    t.ok(cases.some((c) => c.alertname === name), `${name}: is unit-tested`)
  }
})

t.test('gateway: the callers load from their ConfigMap, and the example client proves one of them with its projected token', async (t) => {
  const objects = kubernetesObjects('gateway')
  const [deployment] = only<Deployment>(objects, 'Deployment')
  const container = deployment?.spec.template.spec.containers.find((c) => c.name === 'pave-proxy') as Container
  const config = configFromEnvironment({ ...imageEnvironment(), ...containerEnvironment(container) })
  t.same(config.callers?.map((c) => c.name), ['intake', 'reporting'])
  const intake = config.callers?.[0]
  const reporting = config.callers?.[1]
  const mounts = container.volumeMounts ?? []
  t.ok(intake?.tokenFile !== undefined && mounts.some((m) => intake.tokenFile?.startsWith(m.mountPath + '/') === true && m.subPath === undefined), 'the token file is in a mounted volume (no subPath: rotation reaches the pod)')
  t.ok((reporting?.jwt?.jwks?.keys.length ?? 0) > 0, 'the JWKS file comes from the ConfigMap')
  t.notOk(config.callers?.some((c) => c.clientCert !== undefined), 'no certificate caller without TLS on the listener')

  const cronJob = objects.find((o) => o.kind === 'CronJob') as unknown as { spec: { jobTemplate: { spec: { template: { metadata: { labels: Record<string, string> }, spec: { serviceAccountName: string, automountServiceAccountToken?: boolean, volumes: Array<{ projected?: { sources: Array<{ serviceAccountToken?: { audience: string, expirationSeconds: number, path: string } }> } }> } } } } } }
  const pod = cronJob.spec.jobTemplate.spec.template
  const projected = pod.spec.volumes.flatMap((v) => v.projected?.sources ?? []).map((s) => s.serviceAccountToken).find((s) => s !== undefined)
  t.equal(projected?.audience, reporting?.jwt?.audience, 'the projected token is for the proxy\'s audience')
  t.ok((projected?.expirationSeconds ?? 0) >= 600, 'a token the kubelet renews (at least 10 minutes)')
  t.equal(pod.spec.automountServiceAccountToken, false, 'the API server token is not mounted beside it')
  const namespace = reporting?.jwt?.subject.split(':')[2]
  t.equal(reporting?.jwt?.subject, `system:serviceaccount:${namespace ?? ''}:${pod.spec.serviceAccountName}`, 'the caller\'s subject is the job\'s service account')
  t.ok(objects.some((o) => o.kind === 'ServiceAccount' && o.metadata?.name === pod.spec.serviceAccountName), 'the service account is defined')
  t.equal(pod.metadata.labels['pave-proxy/client'], 'true', 'the NetworkPolicy admits the client')
})
