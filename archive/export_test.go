package archive

// MaxBatch exposes the batch bound to the external tests, which check it.
const MaxBatch = maxBatch
