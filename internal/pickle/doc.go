// Package pickle disassembles and analyses Python pickle streams (protocols
// 0 to 5) without executing anything: it decodes every opcode, runs a
// bounded symbolic stack and memo so that each imported callable is known
// (GLOBAL and INST operands, and STACK_GLOBAL operands traced through the
// memo), and classifies the imports against an embedded allow-list and
// deny-list (lists.yaml, documented in docs/pickle.md).
//
// The parser is hand-written rather than built on a general unpickler
// because its input is hostile: it streams, never trusts a length, count or
// memo index the file claims, bounds every stack, memo, nesting level and
// opcode budget, keeps reading past broken or concatenated streams, and
// reports what it saw before a break (the nullifAI pattern) instead of
// giving up. Nothing is ever loaded, imported or executed, and the input is
// only read.
package pickle
