// Preloaded (`node --expose-gc --import …/memory-probe.mjs`) into both measured servers, the
// Desklink server and the bare ws baseline, so that both are measured by the same code and the
// Desklink server needs no measurement hook of its own.
//
// On `{ type: 'memory', id }` over the IPC channel it answers with the memory the process
// holds once garbage is gone:
// - it forces full garbage collections (the figure should say what idle connections hold, not
//   how much garbage the connect burst left behind), waits for the sweeper threads, and takes
//   the V8 heap figures;
// - then it cycles the whole young generation (run.mjs fixes it at 2 × 16 MiB) with
//   short-lived garbage and takes RSS at once. V8 discards idle young-generation pages from
//   time to time; without this, whether they happen to be resident when the figure is taken
//   (up to 32 MiB) would swamp what the agents hold.
import { setTimeout as sleep } from 'node:timers/promises'

function touchYoungGeneration() {
  let sink
  for (let i = 0; i < 1_000_000; i++) sink = { i, list: [i, i, i, i, i, i, i, i] }
  return sink
}

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
      const { heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage()
      touchYoungGeneration()
      const { rss } = process.memoryUsage()
      process.send?.({
        type: 'memory',
        id: message.id,
        gc: gc !== undefined,
        rss,
        heapUsed,
        heapTotal,
        external,
        arrayBuffers,
      })
    })()
  })
  // The orchestrator is gone (even if it was killed without cleaning up): do not linger.
  process.on('disconnect', () => process.exit(1))
}
