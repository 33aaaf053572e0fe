-- 0002: the limit check runs on every request and reads one user's recent rows; the queue and
-- recovery read unfinished rows. Index both so neither scans the whole history.
CREATE INDEX generations_user_created ON generations (user_id, created_at);
CREATE INDEX generations_status ON generations (status) WHERE status IN ('queued', 'running');
CREATE INDEX generations_channel_user ON generations (channel_id, user_id, id);
CREATE INDEX generations_message ON generations (message_id) WHERE message_id IS NOT NULL;
