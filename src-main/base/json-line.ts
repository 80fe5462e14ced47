/**
 * The last line of a program's output that is a JSON object, parsed; undefined when there is none or it does not
 * parse. Our PowerShell and osascript programs answer with one such line; anything else they print is noise.
 */
export function lastJsonLine(stdout: string): unknown {
  const line = stdout.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith('{')).pop();
  if (!line) return undefined;
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}
