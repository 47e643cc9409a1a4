-- Content database (PostgreSQL): directory (users, categories, rooms, roles) and history.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id    BIGSERIAL PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE,
    admin BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE categories (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    allow_everyone BOOLEAN NOT NULL,
    invitations    BOOLEAN NOT NULL,
    file_upload    BOOLEAN NOT NULL,
    history        BOOLEAN NOT NULL
);
-- kind: 0 allowed, 1 denied, 2 creator
CREATE TABLE category_principals (
    category_id BIGINT NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
    kind        SMALLINT NOT NULL,
    user_id     BIGINT NOT NULL,
    PRIMARY KEY (category_id, kind, user_id)
);
-- kind: 0 normal, 1 auditorium; privacy: 0 open, 1 closed, 2 secret
CREATE TABLE rooms (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    category_id BIGINT NOT NULL REFERENCES categories(id),
    kind        SMALLINT NOT NULL,
    privacy     SMALLINT NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    addin_url   TEXT,
    invitations BOOLEAN NOT NULL DEFAULT TRUE,
    last_seq    BIGINT NOT NULL DEFAULT 0
);
-- role: 0 member, 1 manager, 2 presenter
CREATE TABLE room_roles (
    room_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role    SMALLINT NOT NULL,
    PRIMARY KEY (room_id, user_id, role)
);
CREATE INDEX room_roles_by_user ON room_roles (user_id);
CREATE TABLE messages (
    room_id       BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    author_id     BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    text          TEXT NOT NULL,
    posted_at_us  BIGINT NOT NULL,
    sent_at_us    BIGINT,
    removed       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_id, seq)
);
CREATE INDEX messages_by_time ON messages (posted_at_us);
