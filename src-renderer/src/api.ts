/** The dashboard's access to the main process: `window.deviceTrust` (the preload), and nothing else. */
import type { DeviceTrustApi, IpcError, IpcResult } from '../../src-main/ipc/contract.js';

declare global {
  interface Window {
    deviceTrust?: DeviceTrustApi;
  }
}

export class ApiError extends Error {
  readonly code: string;
  readonly remedy: string | undefined;

  constructor(e: IpcError) {
    super(e.message);
    this.code = e.code;
    this.remedy = e.remedy;
  }
}

export function api(): DeviceTrustApi {
  if (!window.deviceTrust) throw new ApiError({ code: 'NO_BRIDGE', message: 'The dashboard is not connected to the agent (no preload API).' });
  return window.deviceTrust;
}

/** Unwraps the envelope: the value, or an ApiError with the agent's own words and remedy. */
export async function call<T>(answer: Promise<IpcResult<T>>): Promise<T> {
  const r = await answer;
  if (!r.ok) throw new ApiError(r.error);
  return r.value;
}
