#include "op_packages.h"

namespace smrt::detail {
namespace {

constexpr const char* kText = "tensorflow-text";

// tensorflow-text 2.21's op libraries and the ops each registers (TF_GetOpList of each
// tensorflow_text/python/ops/_*.so; tests/test_op_libraries.py checks this table against the
// installed package). A static table, so that a model needing one op loads one library
// (they are 167 MB together) and the error can name the package when it is not installed.
#define SMRT_TEXT(lib) OpProvider{kText, "tensorflow_text/python/ops/" lib}
const std::vector<std::pair<const char*, OpProvider>> kExact = {
    {"TFText>BoiseTagsToOffsets", SMRT_TEXT("_boise_offset_converter.so")},
    {"TFText>OffsetsToBoiseTags", SMRT_TEXT("_boise_offset_converter.so")},
    {"TFText>ByteSplitByOffsets", SMRT_TEXT("_byte_splitter.so")},
    {"TFText>ByteSplitWithOffsets", SMRT_TEXT("_byte_splitter.so")},
    {"ConstrainedSequence", SMRT_TEXT("_constrained_sequence_op.so")},
    {"FastBertNormalize", SMRT_TEXT("_fast_bert_normalizer.so")},
    {"TFText>FastSentencepieceDetokenize", SMRT_TEXT("_fast_sentencepiece_tokenizer.so")},
    {"TFText>FastSentencepieceTokenize", SMRT_TEXT("_fast_sentencepiece_tokenizer.so")},
    {"FastWordpieceTokenizeWithOffsets", SMRT_TEXT("_fast_wordpiece_tokenizer.so")},
    {"TFText>FastWordpieceDetokenize", SMRT_TEXT("_fast_wordpiece_tokenizer.so")},
    {"MaxSpanningTree", SMRT_TEXT("_mst_ops.so")},
    {"TFText>NgramsStringJoin", SMRT_TEXT("_ngrams_op.so")},
    {"CaseFoldUTF8", SMRT_TEXT("_normalize_ops.so")},
    {"FindSourceOffsets", SMRT_TEXT("_normalize_ops.so")},
    {"NormalizeUTF8", SMRT_TEXT("_normalize_ops.so")},
    {"NormalizeUTF8WithOffsetsMap", SMRT_TEXT("_normalize_ops.so")},
    {"PhraseTokenize", SMRT_TEXT("_phrase_tokenizer.so")},
    {"TFText>PhraseDetokenize", SMRT_TEXT("_phrase_tokenizer.so")},
    {"RegexSplitWithOffsets", SMRT_TEXT("_regex_split_ops.so")},
    {"SentenceFragments", SMRT_TEXT("_sentence_breaking_ops.so")},
    {"SentencepieceDetokenizeOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceIdToStringOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceStringToIdOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceTokenizeOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceTokenizeWithOffsetsOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"SentencepieceVocabSizeOp", SMRT_TEXT("_sentencepiece_tokenizer.so")},
    {"TokenizerFromLogits", SMRT_TEXT("_split_merge_from_logits_tokenizer.so")},
    {"SplitMergeTokenizeWithOffsets", SMRT_TEXT("_split_merge_tokenizer.so")},
    {"SentenceFragmentsV2", SMRT_TEXT("_state_based_sentence_breaker_op.so")},
    {"TFText>RoundRobinGenerateMasks", SMRT_TEXT("_trimmer_ops.so")},
    {"TFText>RoundRobinTrim", SMRT_TEXT("_trimmer_ops.so")},
    {"UnicodeScriptTokenizeWithOffsets", SMRT_TEXT("_unicode_script_tokenizer.so")},
    {"TFText>Utf8Binarize", SMRT_TEXT("_utf8_binarize_op.so")},
    {"WhitespaceTokenizeWithOffsets", SMRT_TEXT("_whitespace_tokenizer.so")},
    {"TFText>WhitespaceTokenizeWithOffsetsV2", SMRT_TEXT("_whitespace_tokenizer_v2.so")},
    {"WordpieceTokenizeWithOffsets", SMRT_TEXT("_wordpiece_tokenizer.so")},
    // tf-sentencepiece (the sentencepiece project's TensorFlow ops, before tensorflow-text's): the
    // names REGISTER_OP gives them in google/sentencepiece's tensorflow/sentencepiece_processor_ops.cc.
    {"SentencepieceGetPieceSize", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepiecePieceToId", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepieceIdToPiece", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepieceGetPieceType", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepieceEncodeDense", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepieceEncodeSparse", OpProvider{"tf-sentencepiece", nullptr}},
    {"SentencepieceDecode", OpProvider{"tf-sentencepiece", nullptr}},
};
#undef SMRT_TEXT

// Packages that name their ops with a prefix ("Addons>GeluGrad").
constexpr std::pair<std::string_view, const char*> kPrefixes[] = {
    {"TFText>", kText},
    {"Addons>", "tensorflow-addons"},
    {"IO>", "tensorflow-io"},
    {"TFRA>", "tensorflow-recommenders-addons"},
    {"SimpleML", "tensorflow-decision-forests"},
};

}  // namespace

std::optional<OpProvider> op_provider(std::string_view op) {
  for (const auto& [name, provider] : kExact) {
    if (op == name) return provider;
  }
  for (const auto& [prefix, package] : kPrefixes) {
    if (op.substr(0, prefix.size()) == prefix) return OpProvider{package, nullptr};
  }
  return std::nullopt;
}

const std::vector<std::pair<const char*, OpProvider>>& known_op_libraries() { return kExact; }

}  // namespace smrt::detail
