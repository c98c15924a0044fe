-- When each API key was last looked up by a server (at most once per key cache period per
-- server, not on every call), for `creditgate key list`.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
