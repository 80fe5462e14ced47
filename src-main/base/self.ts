/**
 * The command line that starts this agent program, as the OS should start it again (scheduled tasks,
 * services, the tray app's device task). The entry point that is running says what it is: the headless
 * program (its Node runtime and its bundled script), or a source checkout's bin/device-trust-agent.js under
 * the Node that runs it. Never the Electron executable: the tray app is not a headless program.
 */
let declared: string[] | undefined;

export function declareAgentCommand(command: string[]): void {
  declared = [...command];
}

export function declaredAgentCommand(): string[] | undefined {
  return declared && [...declared];
}
