-- Invitations and followed rooms.
-- An invitation is left for a user added as member of a room whose invitations are on
-- (room inherits and the category's switch is on); the client fetches the pending ones
-- after sign-in. A follow gives a room's unread count without joining it.
-- No foreign key to `rooms`: migrations rebuild that table in place (see 0002), which
-- would cascade. The server deletes a room's rows when it deletes the room, and every
-- read joins `rooms`, so a leftover row is never seen.
CREATE TABLE invitations (
    user_id    INTEGER NOT NULL,
    room_id    INTEGER NOT NULL,
    inviter_id INTEGER NOT NULL,
    at_us      BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
CREATE TABLE follows (
    user_id       INTEGER NOT NULL,
    room_id       INTEGER NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
