/**
 * Child process for the crash test: appends events to a small, fast-rotating event log as fast as it can
 * until it is killed. Args: <stateDir> <maxFileBytes> <keepFiles>.
 */
import { EventLog } from '../../src-main/core/events.js';

const [stateDir, maxFileBytes, keepFiles] = process.argv.slice(2);
const log = new EventLog(stateDir!, 'crash-test', { maxFileBytes: Number(maxFileBytes), keepFiles: Number(keepFiles), sinks: [] });
process.stdout.write('ready\n');
for (let i = 0; ; i++) log.record(i % 3 ? 'NOTHING_TO_DO' : 'RETRY_LATER', `event number ${i} ${'x'.repeat(i % 200)}`, { i });
