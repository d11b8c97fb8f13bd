"""The generated record pages: lists and scenes, forms, detail pages, sharing."""
