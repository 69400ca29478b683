"""Review: the predictions of a batch that people look at (`review_queue`)."""
