// An overwrite command for unit tests: a user overwrite with nothing set, fields overridden per case.
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';

export const overwriteCommand = (over: Partial<OverwriteCommand> = {}): OverwriteCommand => ({
  request_id: 'r',
  tenant_id: 't',
  subject: 'user',
  id: 'u',
  set: {},
  mode: 'overwrite',
  delete_events: false,
  suppress: false,
  requested_at: 1_000,
  insert_missing: null,
  ...over,
});
