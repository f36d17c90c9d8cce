// Package spool provides the guard's local audit spool: an append-only file
// of audit records that makes a request's record durable before its
// response ends, without a database commit per request, and copies the
// records into the store in large batches behind the request path.
//
// # Durability
//
// [Spool.Append] encodes one record (or [Spool.AppendBatch] several) and
// hands it to the kernel with a single write(2) on a file opened with
// O_APPEND. When Append returns, the record is in the page cache: a guard
// killed at that instant (kill -9, a panic, the OOM killer) loses nothing
// that was acknowledged. Power loss is a matter of the fsync policy
// ([Options.Fsync]): FsyncAlways syncs before Append returns (concurrent
// appends share one fsync: group commit), FsyncInterval (the default)
// syncs in the background every FsyncInterval, so a power cut loses at
// most that much, and FsyncNever leaves it to the kernel.
//
// # Format
//
// A spool is a directory holding a random spool ID (file "id"), a lock
// file (one guard process per spool) and numbered segment files
// ("0000000000000001.seg", ...). A segment is a sequence of frames:
//
//	u32 little-endian payload length | u32 CRC-32C of the payload | payload
//
// and a payload is one record: a version byte (1), the time as Unix
// nanoseconds (varint), the strings key ID, key name, client IP, method,
// route, model, error and client certificate (each a uvarint length and
// the bytes), then status, prompt tokens, completion tokens, latency,
// bytes in, bytes out and requests (varints) and a flag byte (truncated,
// client gone). Lengths are bounded ([MaxRecordBytes]); a frame that is
// short, too long or fails its checksum ends the segment's valid data (a
// write torn by a power cut), and reading resumes with the next segment.
// Each guard start opens a new segment, so only a segment being written
// can be extended.
//
// # Copying into the store
//
// [Spool.Replay] copies every record not yet copied into a [Sink] in
// batches. Each batch is stored together with the position after it
// (store.UsageStore.AppendSpooled), in one transaction, so a copy
// interrupted anywhere is resumed from the stored position without losing
// or repeating a record. Segments wholly copied are deleted. [Spool.Run]
// replays in the background whenever records are waiting; the guard
// replays everything once at start-up, before it restores budgets from the
// store and serves.
package spool
