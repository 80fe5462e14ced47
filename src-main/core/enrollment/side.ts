/**
 * Who runs a pass. The *user side* runs as the logged-on user (their certificate and key, their browsers); the
 * *device side* runs as root/SYSTEM (the machine-wide browser policy, the posture facts only it can read). The
 * installer registers one OS task / service unit per side (platform/tasks/). Files written before this name
 * (state.json `lastRun.task`, events.jsonl `task`, posture.json `task`) keep the field name `task`.
 */
export type Side = 'user' | 'device';
