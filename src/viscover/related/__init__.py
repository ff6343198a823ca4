"""Related items: Pixie random walks, co-occurrence and visual candidates, blended and ranked."""
