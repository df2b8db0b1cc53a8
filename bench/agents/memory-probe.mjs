// Preloaded (`node --expose-gc --import …/memory-probe.mjs`) into both measured servers, the
// Desklink server and the bare ws baseline, so that both are measured by the same code and the
// Desklink server needs no measurement hook of its own.
//
// On `{ type: 'memory', id }` over the IPC channel it forces full garbage collections (when
// `--expose-gc` is given), waits for the allocator to settle, and answers with
// `process.memoryUsage()`. Without GC the figure would mostly say how much garbage the
// connect burst left behind, not what the idle connections hold.
import { setTimeout as sleep } from 'node:timers/promises'
import { getHeapSpaceStatistics } from 'node:v8'

if (typeof process.send === 'function') {
  process.on('message', (message) => {
    if (message?.type !== 'memory') return
    void (async () => {
      const gc = typeof globalThis.gc === 'function' ? globalThis.gc : undefined
      for (let i = 0; gc && i < 3; i++) {
        gc()
        await sleep(50)
      }
      await sleep(250)
      const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage()
      process.send?.({
        type: 'memory',
        id: message.id,
        gc: gc !== undefined,
        rss,
        heapUsed,
        heapTotal,
        external,
        arrayBuffers,
        spaces: Object.fromEntries(
          getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]),
        ),
      })
    })()
  })
  // The orchestrator is gone (even if it was killed without cleaning up): do not linger.
  process.on('disconnect', () => process.exit(1))
}
