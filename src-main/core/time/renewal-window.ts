/**
 * The renewal window actually used for one certificate. A CA may issue certificates shorter-lived than the
 * configured window (SCEP `-crtvalid 10` with a 14-day window): taken as configured, every pass would find the
 * certificate due and renew it again. Such a window is clamped to a third of the certificate's lifetime (renewal
 * from two thirds of its life, as certmonger does) and the clamp is reported once, at issuance.
 */
export const CLAMPED_FRACTION = 1 / 3;

export interface EffectiveWindow {
  windowMs: number;
  clamped: boolean;
  lifetimeMs: number;
}

export function effectiveWindow(notBefore: string | number, notAfter: string | number, configuredMs: number): EffectiveWindow {
  const nb = typeof notBefore === 'number' ? notBefore : Date.parse(notBefore);
  const na = typeof notAfter === 'number' ? notAfter : Date.parse(notAfter);
  const lifetimeMs = Math.max(0, na - nb);
  // Half the lifetime or more would leave too little of the certificate's life between renewals.
  if (lifetimeMs > 0 && configuredMs >= lifetimeMs / 2) return { windowMs: Math.floor(lifetimeMs * CLAMPED_FRACTION), clamped: true, lifetimeMs };
  return { windowMs: configuredMs, clamped: false, lifetimeMs };
}

export function clampWarning(serial: string, w: EffectiveWindow, configuredMs: number): string {
  const d = (ms: number) => `${+(ms / 86_400_000).toFixed(2)} days`;
  return `Certificate ${serial} is valid for only ${d(w.lifetimeMs)}, not much longer than the renewal window (${d(configuredMs)}); `
    + `the window was clamped to ${d(w.windowMs)} so that the certificate is not renewed on every run. Ask the CA administrator for a longer validity (SCEP: -crtvalid) or shorten the window (scepRenewalWindowDays).`;
}
