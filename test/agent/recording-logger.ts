/**
 * A logger for tests of agent parts that log: it keeps what it is told, to be looked at.
 */
import type { AgentLogger } from '../../packages/agent/src/agent-logger.ts'

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error'
  readonly fields: Record<string, unknown>
  readonly message: string
}

export interface RecordingLogger extends AgentLogger {
  readonly entries: LogEntry[]
}

export function createRecordingLogger(): RecordingLogger {
  const entries: LogEntry[] = []
  const at =
    (level: LogEntry['level']) =>
    (fields: object, message: string): void => {
      entries.push({ level, fields: { ...fields }, message })
    }
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  }
}
