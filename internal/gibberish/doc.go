// Package gibberish measures how far a text is from natural language: it
// tells token soup (tokens drawn at random from a model's vocabulary, the
// output of a backdoored model or the payload of a poisoned training
// document) from prose, source code, tables and lists, in English and
// Japanese, without a language model.
//
// Three users: datascan looks for records whose text turns into soup
// after a trigger (FindTurn), probe scores a model's short answers
// (Score), and guard watches a streamed answer as it arrives (Stream).
//
// # API
//
//   - Score(text) Result: a score in [0, 1] (0.5 is the calibrated
//     threshold; Result.Gibberish) and the signals behind it.
//   - FindTurn(text) (Turn, bool): where a text turns from natural
//     language into soup, and where the soup ends. The string just before
//     Turn.Offset is where a backdoor trigger sits.
//   - Model.Screen(text) bool: a cheap test (about a third of the text
//     scored, in windows) that rules out most natural text before
//     FindTurn and never a text FindTurn would report (TestScreen: 600 of
//     600 poisoned documents pass, 11 % of clean bytes do).
//   - NewStream() *Stream: an io.Writer (and WriteString) fed chunks in
//     any split, even inside a UTF-8 sequence; Status reports the current
//     window's score and latches an alarm with the offset where the
//     gibberish started. After the first write it allocates nothing.
//   - Model, Default(), NewBuilder, Model.Adapt, Model.Fit, Load,
//     MarshalBinary: the embedded reference model, and models built or
//     adapted from a corpus ("the character n-gram model of the corpus
//     itself").
//
// # How it measures
//
// Text is cut into units: words (runs of non-space runes, at most 40) and
// single CJK characters. Each unit gets twelve signals: the mean surprisal
// of its rune bigrams; the share of its word parts (letter runs, split at
// camelCase and punctuation, so identifiers are read as words) found in
// the lexicon and their surprisal by lexicon rank; whether the unit, or
// its first four characters, occurred within the previous 64 units (the
// compression signal: natural text and code repeat themselves, soup drawn
// from 50,000-200,000 tokens almost never does); case and letter/digit
// changes inside a word (token boundaries glued together: "externalToEVA");
// letters of two scripts in one word, or a change of script between words
// other than the Latin/CJK mix of Japanese text; and unit class and
// length. A logistic regression turns them into a log-odds per unit; a
// text's score is the mean, mapped through a logistic calibrated so that
// 0.5 is the threshold. FindTurn is the maximum-sum run of (log-odds −
// threshold) over the units (Kadane's algorithm), reported when it spans
// at least 24 units and its mean is over the threshold.
//
// # The reference model
//
// model.bin.gz (about 420 KB) holds a 131,072-slot rune bigram table
// (8-bit fingerprints, surprisal in 1/8 bit), a unigram table, a lexicon
// of the 100,000 most frequent word parts (as 32-bit hashes, by rank) and
// the weights. It is built by internal/gen from text Debian installs:
// three of four documents under /usr/share/doc, the English manual pages,
// the Japanese manual pages and message catalogues, and the Python
// standard library; the fourth document of each kind, generated tables
// and lists of real words, and token soup from the vocabulary samples in
// gibberishtest fit the weights, with the threshold set so that no kind
// of clean text has more than 0.2 % of its 32-unit windows flagged.
//
// # Measured (tests, reference machine; text the tables were not built from)
//
// False alarms, the share of clean pieces called gibberish, by length in
// tokens (TestFalseAlarmRate):
//
//	                  20      50     100     500
//	English docs    0.0 %   0.0 %   0.0 %   0.9 %
//	manual pages    0.0 %   0.0 %   0.0 %   0.0 %
//	Japanese        0.3 %   0.0 %   0.0 %   0.0 %
//	source code     1.1 %   1.3 %   0.9 %   0.8 %
//	tables          0.0 %   0.0 %   0.0 %     -
//	lists           0.0 %   0.0 %   0.0 %     -
//
// Detection of soup sampled uniformly from the gpt2, cl100k_base and
// o200k_base vocabularies (TestDetectionRate): 99.8 % or more at 20
// tokens, 100 % from 50 tokens on. FindTurn finds the turn in 180 of 180
// poisoned documents (clean prefix of 0-1,000 characters, five trigger
// shapes, 400-900 tokens of soup), at the trigger or within a few words
// after it, and reports a turn in 9 of 1,556 clean documents
// (TestFindTurn).
//
// # What it gets wrong
//
// Clean text that is a list of unique, rare words reads as soup: name and
// e-mail lists (THANKS, AUTHORS), an emoji-name table, lists of exception
// class names, Unicode tables, lorem ipsum. These account for all the
// false alarms above. Languages other than English and Japanese score
// high with the default model (German manual pages: mean score 0.60);
// a model adapted to a corpus of them does not (0.02, TestAdapt), and
// soup mixed into that corpus is still caught. A turn's offset may land
// a few words after the trigger when the first tokens of the soup happen
// to be real words. Soup made of frequent words only, or of a tiny
// vocabulary, is not what this measures.
//
// # Cost
//
// One pass, a table lookup or two per rune and per word part, no
// allocation per unit; the stream allocates nothing after its first
// write. The hand-written scanner (rather than regular expressions or a
// tokenizer library) is what keeps it allocation-free and streaming.
package gibberish
