export type { MasterKeySource } from './master-key.ts'
export { decodeMasterKey, loadMasterKey } from './master-key.ts'
export type { SecretBox } from './secret-box.ts'
export { createSecretBox } from './secret-box.ts'
