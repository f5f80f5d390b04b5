/**
 * Reads the deployment artefacts (Kubernetes manifests, the Compose file, the
 * Dockerfile) for the tests in this folder, and the small Kubernetes shapes they use.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const KUBERNETES_DIR = join(ROOT, 'deploy', 'kubernetes')

/** One YAML document of a file. */
export interface YamlDocument {
  readonly file: string
  readonly index: number
  readonly value: unknown
  readonly errors: readonly string[]
}

export function yamlFiles (directory: string): string[] {
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.ya?ml$/.test(name))
    .map((name) => join(directory, name))
    .sort()
}

export function readYamlDocuments (file: string): YamlDocument[] {
  const text = readFileSync(file, 'utf8')
  return parseAllDocuments(text, { strict: true, uniqueKeys: true }).flatMap((document, index) => {
    // A file's trailing `---` makes an empty document: not a manifest.
    if (document.contents === null) return []
    return [{
      file: relative(ROOT, file),
      index,
      value: document.toJS(),
      errors: [...document.errors, ...document.warnings].map((e) => e.message)
    }]
  })
}

// ---- the parts of Kubernetes objects the tests read (everything optional: the tests check presence)

export interface ObjectMeta { name?: string, namespace?: string, labels?: Record<string, string> }
export interface LabelSelector { matchLabels?: Record<string, string>, matchExpressions?: unknown[] }
export interface EnvVar {
  name: string
  value?: string
  valueFrom?: { secretKeyRef?: { name: string, key: string }, configMapKeyRef?: { name: string, key: string } }
}
export interface Probe { httpGet?: { path?: string, port?: number | string }, exec?: unknown, tcpSocket?: unknown, periodSeconds?: number, timeoutSeconds?: number, failureThreshold?: number }
export interface SecurityContext {
  runAsNonRoot?: boolean
  runAsUser?: number
  runAsGroup?: number
  fsGroup?: number
  readOnlyRootFilesystem?: boolean
  allowPrivilegeEscalation?: boolean
  privileged?: boolean
  capabilities?: { drop?: string[], add?: string[] }
  seccompProfile?: { type?: string }
}
export interface Container {
  name: string
  image?: string
  restartPolicy?: string
  ports?: Array<{ name?: string, containerPort: number, protocol?: string }>
  env?: EnvVar[]
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean, subPath?: string }>
  startupProbe?: Probe
  livenessProbe?: Probe
  readinessProbe?: Probe
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: SecurityContext
  lifecycle?: { preStop?: { sleep?: { seconds: number }, exec?: unknown, httpGet?: unknown } }
}
export interface PodSpec {
  terminationGracePeriodSeconds?: number
  automountServiceAccountToken?: boolean
  enableServiceLinks?: boolean
  securityContext?: SecurityContext
  initContainers?: Container[]
  containers: Container[]
  volumes?: Array<{ name: string, secret?: { secretName: string, items?: Array<{ key: string, path: string }>, defaultMode?: number }, configMap?: { name: string } }>
}
export interface Deployment {
  apiVersion: string
  kind: 'Deployment'
  metadata: ObjectMeta
  spec: { replicas?: number, selector: LabelSelector, template: { metadata: ObjectMeta, spec: PodSpec } }
}
export interface Service {
  kind: 'Service'
  metadata: ObjectMeta
  spec: { selector?: Record<string, string>, ports: Array<{ name?: string, port: number, targetPort?: number | string, protocol?: string }> }
}
export interface HorizontalPodAutoscaler {
  apiVersion: string
  kind: 'HorizontalPodAutoscaler'
  metadata: ObjectMeta
  spec: { scaleTargetRef: { apiVersion: string, kind: string, name: string }, minReplicas?: number, maxReplicas: number, metrics?: unknown[] }
}
export interface PodDisruptionBudget {
  kind: 'PodDisruptionBudget'
  metadata: ObjectMeta
  spec: { selector: LabelSelector, maxUnavailable?: number | string, minAvailable?: number | string }
}
export interface NetworkPolicyPeer { podSelector?: LabelSelector, namespaceSelector?: LabelSelector, ipBlock?: unknown }
export interface NetworkPolicy {
  kind: 'NetworkPolicy'
  metadata: ObjectMeta
  spec: {
    podSelector: LabelSelector
    policyTypes?: string[]
    ingress?: Array<{ from?: NetworkPolicyPeer[], ports?: Array<{ protocol?: string, port?: number | string }> }>
    egress?: Array<{ to?: NetworkPolicyPeer[], ports?: Array<{ protocol?: string, port?: number | string }> }>
  }
}
export type KubernetesObject = { apiVersion?: string, kind?: string, metadata?: ObjectMeta } & Record<string, unknown>

/** Every manifest (kustomization files aside) of one folder of deploy/kubernetes. */
export function kubernetesObjects (folder: string): KubernetesObject[] {
  return yamlFiles(join(KUBERNETES_DIR, folder))
    .filter((file) => !file.endsWith('kustomization.yaml'))
    .flatMap(readYamlDocuments)
    .map((document) => document.value as KubernetesObject)
}

export function only<T> (objects: readonly KubernetesObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as unknown as T[]
}

/** Whether a selector (matchLabels only) selects a set of labels. */
export function selects (selector: LabelSelector | Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined) return false
  const matchLabels = 'matchLabels' in selector || 'matchExpressions' in selector ? (selector as LabelSelector).matchLabels ?? {} : selector as Record<string, string>
  const entries = Object.entries(matchLabels)
  return entries.length > 0 && entries.every(([key, value]) => labels?.[key] === value)
}

/** Kubernetes quantities: `50m` CPU → 0.05, `64Mi` → bytes. */
export function quantity (value: string | number | undefined): number {
  if (value === undefined) return NaN
  if (typeof value === 'number') return value
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(value)
  if (match === null) return NaN
  const factor: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }
  return Number(match[1]) * (match[2] !== undefined ? factor[match[2]] ?? NaN : 1)
}

export const MiB = 1024 ** 2

/** The proxy containers of a pod: the one built from this repository's image. */
export function proxyContainers (pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers].filter((c) => c.name === 'pave-proxy')
}

/** A placeholder for a value Kubernetes would take from a Secret. */
export const FROM_SECRET = 'value-from-a-secret'

/**
 * Loads pave-proxy's configuration from environment variables as a deployment sets
 * them: values from Secrets become placeholders, files (the API secret) read as a
 * placeholder, so the configuration is checked exactly as the process would.
 */
export function configFromEnvironment (env: Record<string, string>): Config {
  const mounted = configMapFiles()
  return loadConfig({ env, argv: [], readFile: (path) => mounted.get(path) ?? FROM_SECRET })
}

/** The files ConfigMaps put in the proxy containers, by path: what a mounted configuration file holds. */
export function configMapFiles (): Map<string, string> {
  const files = new Map<string, string>()
  for (const folder of readdirSync(KUBERNETES_DIR)) {
    const objects = kubernetesObjects(folder)
    const maps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata?.name, (o.data ?? {}) as Record<string, string>]))
    for (const deployment of only<Deployment>(objects, 'Deployment')) {
      const pod = deployment.spec.template.spec
      for (const container of proxyContainers(pod)) {
        for (const mount of container.volumeMounts ?? []) {
          const volume = pod.volumes?.find((v) => v.name === mount.name)
          const data = volume?.configMap !== undefined ? maps.get(volume.configMap.name) : undefined
          for (const [key, value] of Object.entries(data ?? {})) files.set(`${mount.mountPath}/${key}`, value)
        }
      }
    }
  }
  return files
}

/** A container's environment as the process would see it (Secret references as placeholders). */
export function containerEnvironment (container: Container): Record<string, string> {
  const env: Record<string, string> = {}
  for (const variable of container.env ?? []) env[variable.name] = variable.value ?? FROM_SECRET
  return env
}

// ---- the Dockerfile

export interface Instruction { readonly keyword: string, readonly args: string }
export interface Stage { readonly from: string, readonly name: string | undefined, readonly instructions: readonly Instruction[] }
export interface Dockerfile { readonly args: ReadonlyMap<string, string>, readonly stages: readonly Stage[] }

/** A small Dockerfile reader: comments dropped, continuation lines joined, split into stages. */
export function parseDockerfile (text: string): Dockerfile {
  const logical: string[] = []
  let pending = ''
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      continue
    }
    const joined = (pending + line).trim()
    pending = ''
    if (joined !== '') logical.push(joined)
  }
  const args = new Map<string, string>()
  const stages: Array<{ from: string, name: string | undefined, instructions: Instruction[] }> = []
  for (const line of logical) {
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    const instruction = { keyword: keyword.toUpperCase(), args: rest.replace(/\s+/g, ' ').trim() }
    if (instruction.keyword === 'FROM') {
      const [from = '', as, name] = instruction.args.split(' ')
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [name = '', value = ''] = instruction.args.split('=')
      args.set(name, value)
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return { args, stages }
}

export function readDockerfile (): Dockerfile {
  return parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
}

/** `ENV A=1 B=2` instructions of a stage, as a map. */
export function stageEnvironment (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const instruction of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const pair of instruction.args.split(' ')) {
      const at = pair.indexOf('=')
      env[pair.slice(0, at)] = pair.slice(at + 1)
    }
  }
  return env
}

/** The environment the image itself sets for the proxy (PATH aside). */
export function imageEnvironment (): Record<string, string> {
  const runtime = readDockerfile().stages.at(-1)
  const { PATH: _path, ...env } = runtime !== undefined ? stageEnvironment(runtime) : {}
  return env
}
