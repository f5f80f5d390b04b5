/**
 * The package's programmatic entry point: build the proxy in-process, load its
 * configuration, or compute PAVE tokens. The PAVE mock is exported as `pave-proxy/mock`.
 */
export { buildApp, type BuildAppOptions } from './app.js'
export { loadConfig, ConfigError, ENVIRONMENT_VARIABLES, type LoadConfigInput } from './config/load.js'
export type { Config, AccountConfig } from './config/schema.js'
export { computeToken, formatTimestamp, parseTimestamp, type PaveCredentials } from './signing/pave-token.js'
export { ERRORS, type ErrorCode } from './errors.js'
