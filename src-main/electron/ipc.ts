/** Registers every channel of the contract with ipcMain, each call going through the guard. */
import { ipcMain, type IpcMainInvokeEvent } from 'electron';
import { CHANNELS, type Channel } from '../ipc/contract.js';
import { dispatch, type GuardOptions, type Handlers, type IpcSender } from '../ipc/guard.js';

/** Who sent it, as the guard needs to know: the sending frame's URL, and whether it is a top-level frame. */
export function senderOf(event: IpcMainInvokeEvent): IpcSender {
  const frame = event.senderFrame;
  return { frameUrl: frame?.url, isMainFrame: Boolean(frame) && frame!.parent === null };
}

export function registerIpc(handlers: Handlers, opts: GuardOptions): void {
  for (const channel of Object.keys(CHANNELS) as Channel[]) {
    ipcMain.handle(channel, (event, request: unknown) => dispatch(channel, request, senderOf(event), handlers, opts));
  }
}
