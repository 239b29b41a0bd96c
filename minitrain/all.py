"Everything minitrain exports, stage by stage: `from minitrain.all import *`."
from .core import *
from .datasets import *
from .data import *
from .optimizer import *
from .learner import *
from .inference import *
from .schedule import *
from .hooks import *
from .init import *
from .augment import *
from .accel import *
from .tracking import *
from .distributed import *
from .vision import *
from .block import *
from .models import *
from .cli import *
