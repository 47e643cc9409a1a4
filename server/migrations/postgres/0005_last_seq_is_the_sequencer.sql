-- rooms.last_seq becomes the sequencer of each room (store/sequence.rs): every commit
-- numbers its posts from it and raises it, whichever chat server of a pool commits.
-- Before, it was raised only for rooms whose messages are not stored; bring it up to the
-- highest stored message everywhere.
UPDATE rooms
SET last_seq = (SELECT MAX(m.seq) FROM messages m WHERE m.room_id = rooms.id)
WHERE last_seq < (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.room_id = rooms.id);
