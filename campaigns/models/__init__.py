"""Campaign models, one module per area: the SOP engine and delivery (core), acquisition through
channel live codes (livecodes), the WeCom connector (wecom) and surveys (surveys)."""
from .alerts import *  # noqa: F401,F403
from .core import *  # noqa: F401,F403
from .core import DAYS_TRIGGERS, RUN_TRIGGERS, TOUCH_ACTIONS  # noqa: F401
from .livecodes import *  # noqa: F401,F403
from .surveys import *  # noqa: F401,F403
from .wecom import *  # noqa: F401,F403
