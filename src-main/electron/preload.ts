/**
 * The preload: exposes `window.deviceTrust`, generated from the contract (named functions only; the page
 * never sees ipcRenderer). Bundled to preload.cjs by src-renderer/build.mjs, because a sandboxed preload
 * cannot load modules.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { buildApi, UI_EVENT_CHANNEL } from '../ipc/contract.js';

contextBridge.exposeInMainWorld(
  'deviceTrust',
  buildApi(
    (channel, request) => ipcRenderer.invoke(channel, request),
    (listener) => {
      const handler = (_e: IpcRendererEvent, event: unknown) => listener(event);
      ipcRenderer.on(UI_EVENT_CHANNEL, handler);
      return () => {
        ipcRenderer.removeListener(UI_EVENT_CHANNEL, handler);
      };
    },
  ),
);
