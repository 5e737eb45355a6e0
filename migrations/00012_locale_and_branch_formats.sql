-- People read the product in their language, with dates in their branch's time zone and amounts in
-- its currency (issue 12): the console's pages and the push and inbox texts (notify) alike.

-- +goose Up

-- A user's language: one of the catalogues the product has (account.Locales), or NULL to follow
-- the browser's (Accept-Language) in the console and English in pushes.
ALTER TABLE users ADD COLUMN locale text CHECK (locale IN ('en', 'zh-CN'));

-- A branch's IANA time zone (Asia/Shanghai) and ISO 4217 currency (CNY). Both are checked by
-- account against Go's time zone database and the ISO list before they are stored; the checks
-- here only keep the shape. Existing branches keep what the texts assumed until now: UTC. The
-- insurer is Chinese, so an unset currency is the yuan.
ALTER TABLE branches
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64),
    ADD COLUMN currency  text NOT NULL DEFAULT 'CNY' CHECK (currency ~ '^[A-Z]{3}$');

-- The figures' payouts per week and the payout alert's month read the paid claims of a branch by
-- payment time: with 10,000 claims in a branch this keeps them off a scan of the branch.
CREATE INDEX claims_branch_paid_idx ON claims (branch_id, paid_at) WHERE status = 'paid' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX claims_branch_paid_idx;
ALTER TABLE branches DROP COLUMN time_zone, DROP COLUMN currency;
ALTER TABLE users DROP COLUMN locale;
