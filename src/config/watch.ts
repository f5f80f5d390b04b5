/**
 * Watches the configuration file and the secret files for changes.
 *
 * Kubernetes updates a mounted secret by swapping a `..data` symlink in the
 * mount's directory, which replaces the file rather than writing to it; so the
 * watch is on each file's directory, not on the file. Bursts of events are
 * debounced into one call.
 */
import { watch, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'

/** Events closer together than this make one reload. */
export const WATCH_DEBOUNCE_MS = 200

export interface Watcher { close: () => void }

export function watchFiles (paths: readonly string[], onChange: () => void, onError: (error: Error) => void): Watcher {
  const directories = [...new Set(paths.map((path) => dirname(path)))]
  let timer: NodeJS.Timeout | undefined
  const trigger = (): void => {
    clearTimeout(timer)
    timer = setTimeout(onChange, WATCH_DEBOUNCE_MS)
    timer.unref()
  }
  const watchers: FSWatcher[] = []
  for (const directory of directories) {
    try {
      const watcher = watch(directory, { persistent: false }, trigger)
      watcher.on('error', onError)
      watchers.push(watcher)
    } catch (error) {
      onError(error as Error)
    }
  }
  return {
    close: () => {
      clearTimeout(timer)
      for (const watcher of watchers) watcher.close()
    }
  }
}
