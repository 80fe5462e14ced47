/**
 * Kept for the existing imports: the one output-safety layer is base/safe-text.ts (control characters, length,
 * secrets by shape and by value). Tokens and keys never reach a log unless the user asked (`--debug --show-tokens`).
 */
export { redact, redactToken, safeText, safeJson, serverText, registerSecret } from '../base/safe-text.js';
