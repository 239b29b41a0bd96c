"Everything minitrain exports, stage by stage: `from minitrain.all import *`."
from .core import *
from .datasets import *
from .optimizer import *
