-- An approval request carries the arguments of the call it is for (issue 24), masked as the
-- decision record's input is masked (`system/log/mask`), so that an approver sees what they
-- approve. NULL when the call had none or the mask removed them; the binding stays the digest.
ALTER TABLE approvals ADD COLUMN IF NOT EXISTS arguments jsonb;
