export type { Clock, IdGenerator } from './ids.ts'
export { systemClock, uuidv7 } from './ids.ts'
export type { Releaser, Releasers } from './releasers.ts'
export { createReleasers } from './releasers.ts'
