"""Built-in data sets: a synthetic behaviour generator (the default), MovieLens-100K,
Amazon review sequences (the DIN paper's Amazon protocol), a synthetic multi-task generator
and Taobao UserBehavior as click and purchase tasks."""
from .amazon import amazon_ctr, amazon_path, load_amazon_reviews
from .movielens import load_movielens_100k, movielens_ctr, movielens_path
from .multitask import make_multitask_synthetic
from .synthetic import make_synthetic, synthetic_click_probability
from .taobao import load_taobao_userbehavior, taobao_multitask, taobao_path

__all__ = ["make_synthetic", "make_multitask_synthetic", "synthetic_click_probability",
           "load_movielens_100k", "movielens_ctr", "movielens_path", "load_amazon_reviews",
           "amazon_ctr", "amazon_path", "load_taobao_userbehavior", "taobao_multitask",
           "taobao_path"]
