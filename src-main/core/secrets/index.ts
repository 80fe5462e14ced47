// The store itself is handed in by the composition root (core/context.ts `AgentContext.secrets`): the OS keyring
// (keyring.ts) under plain Node, Electron's safeStorage in the app. There is deliberately no file-backed fallback.
export { adminTokenName, keyringUnavailable, type SecretStore } from './types.js';
