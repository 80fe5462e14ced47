/**
 * A test's composition root: the context a root would build (core/context.ts), with no outside log by default
 * so that tests never write to the machine's journal. Parts are replaced per test.
 */
import { EventSinks, type AgentContext } from '../../src-main/core/context.js';
import { KeyringSecretStore } from '../../src-main/core/secrets/keyring.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';

export function testContext(parts: Partial<AgentContext> = {}): AgentContext {
  return {
    // The tests run on Linux: its platform, as cli/main.ts would load it here.
    platform: createLinuxPlatform,
    managed: { description: 'none (test)', read: () => [] },
    secrets: new KeyringSecretStore(),
    events: EventSinks.none(),
    ...parts,
  };
}
