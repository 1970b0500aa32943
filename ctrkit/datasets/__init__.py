"""Built-in data sets: a synthetic behaviour generator (the default), MovieLens-100K and
Amazon review sequences (the DIN paper's Amazon protocol)."""
from .amazon import amazon_ctr, amazon_path, load_amazon_reviews
from .movielens import load_movielens_100k, movielens_ctr, movielens_path
from .multitask import make_multitask_synthetic
from .synthetic import make_synthetic, synthetic_click_probability

__all__ = ["make_synthetic", "make_multitask_synthetic", "synthetic_click_probability",
           "load_movielens_100k", "movielens_ctr", "movielens_path", "load_amazon_reviews",
           "amazon_ctr", "amazon_path"]
