-- 0011 keyset paging of the inventory lists: every page of services (by
-- risk, last seen, first seen) and of findings (by severity) reads in index
-- order, so the thousandth page costs what the first does.

CREATE INDEX inv_findings_severity ON inv_findings (severity_rank, id);
CREATE INDEX inv_services_last_seen_id ON inv_services (last_seen, id);
CREATE INDEX inv_services_first_seen_id ON inv_services (first_seen, id);
