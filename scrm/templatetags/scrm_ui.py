"""Template tags of the dashboard shell: the navigation, optional panels, money."""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.template.loader import get_template
from django.template import TemplateDoesNotExist
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

register = template.Library()

def _not_a_guide(staff):
    return staff is not None and staff.role != staff.Role.GUIDE


# (url name, label, icon, namespace or url names that mark the item current[, who sees it]).
# Sections whose urls are not registered yet are shown disabled, so the shell never links to a 404.
NAVIGATION = [
    ("dashboard", _("Dashboard"), "speedometer2", ("dashboard",)),
    ("members:list", _("Members"), "people", ("members",)),
    ("lifecycle:overview", _("Lifecycle"), "arrow-repeat", ("lifecycle",)),
    ("tagging:index", _("Tags & segments"), "tags", ("tagging",)),
    ("campaigns:index", _("Campaigns"), "megaphone", ("campaigns",)),
    ("campaigns:tasks", _("Tasks"), "check2-square", ("campaigns:tasks",)),
    ("coupons:index", _("Coupons"), "ticket-perforated", ("coupons",)),
    ("campaigns:live_codes", _("Live codes"), "qr-code",
     ("campaigns:live_codes", "campaigns:live_code_new", "campaigns:live_code_detail", "campaigns:live_code_edit",
      "campaigns:acquisition"), _not_a_guide),
    ("imports:list", _("Import"), "upload", ("imports",)),
]
SETTINGS_NAVIGATION = [
    ("settings_stores", _("Stores"), "shop", ("settings_store",)),
    ("settings_staff", _("Staff"), "person-badge", ("settings_staff",)),
    ("settings_api_keys", _("API keys"), "key", ("settings_api_key",)),
]


def url_or_none(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _is_current(request, marks):
    """A mark is a view name, a namespace ("members") or, outside namespaces, a url-name prefix."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return False
    for mark in marks:
        if match.view_name == mark or match.view_name.startswith(mark + ":"):
            return True
        if not match.namespace and ":" not in mark and (match.url_name or "").startswith(mark):
            return True
    return False


def _items(request, entries):
    items = []
    staff = getattr(request, "staff", None)
    for name, label, icon, marks, *who in entries:
        if who and not who[0](staff):
            continue
        items.append({"url": url_or_none(name), "label": label, "icon": icon, "current": _is_current(request, marks)})
    # A more specific item (Tasks inside campaigns) wins over its section.
    specific = [i for i in items if i["current"]]
    if len(specific) > 1:
        for item in specific[:-1]:
            item["current"] = False
    return items


@register.simple_tag(takes_context=True)
def navigation(context):
    return _items(context["request"], NAVIGATION)


@register.simple_tag(takes_context=True)
def settings_navigation(context):
    return _items(context["request"], SETTINGS_NAVIGATION)


@register.simple_tag
def optional_url(name, *args):
    """The url of ``name``, or '' when no such url is registered (yet)."""
    return url_or_none(name, *args) or ""


@register.simple_tag(takes_context=True)
def optional_include(context, template_name):
    """Render ``template_name`` with the current context if it exists; nothing otherwise."""
    try:
        included = get_template(template_name)
    except TemplateDoesNotExist:
        return ""
    return included.render(context.flatten(), context.get("request"))


@register.filter
def yuan(value):
    """¥1,234.50: money with two decimals, grouped by thousands as Chinese receipts print it."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError):
        return value
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


@register.filter
def percent(value, digits=1):
    if value is None:
        return ""
    return f"{Decimal(value) * 100:.{int(digits)}f}%"


_WIDGET_CLASSES = {
    "select": "form-select",
    "selectmultiple": "form-select",
    "checkbox": "form-check-input",
    "checkboxselectmultiple": "",
    "radioselect": "",
}


@register.filter
def bs(field, extra=""):
    """Render a bound form field's widget with Bootstrap's classes (and is-invalid on errors)."""
    widget = field.field.widget
    kind = type(widget).__name__.lower().replace("widget", "").replace("input", "") or "text"
    if kind == "date":
        widget.input_type = "date"
        widget.format = "%Y-%m-%d"
    css = _WIDGET_CLASSES.get(kind, "form-control")
    words = extra.split()
    if "sm" in words:
        words.remove("sm")
        if css:
            words.append(css + "-sm")
    classes = " ".join(c for c in (css, *words, "is-invalid" if field.errors else "") if c)
    return field.as_widget(attrs={"class": classes} if classes else {})


@register.filter
def widget_kind(field):
    return type(field.field.widget).__name__.lower()
