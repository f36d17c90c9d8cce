-- 0013 languages: each user's dashboard language ('' = the browser's
-- Accept-Language; 'en' or 'ja'), and the message each inventory
-- finding's detail was written from (service.Message as JSON, '' when the
-- finding was recorded without one), so the dashboard can say the detail
-- in the reader's language while detail keeps the English.

ALTER TABLE users ADD COLUMN lang TEXT NOT NULL DEFAULT '';
ALTER TABLE inv_findings ADD COLUMN detail_msg TEXT NOT NULL DEFAULT '';
