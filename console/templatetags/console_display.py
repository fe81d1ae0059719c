"""Template helpers of the console's own pages: the badge colour of a status, as in the lists."""

from django import template

from console.display import STATUS_COLOURS

register = template.Library()


@register.filter
def badge_type(status: str) -> str:
    return STATUS_COLOURS.get(str(status), "")
