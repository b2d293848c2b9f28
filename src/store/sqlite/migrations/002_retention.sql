-- Retention: the lowest seq still stored. Events below it were pruned (a reader before it gets a `gap`).
ALTER TABLE tasks ADD COLUMN first_seq INTEGER NOT NULL DEFAULT 1;
