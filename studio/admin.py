"""The admin site's names: Studio lives inside it (see templates/admin/ for the Studio links)."""

from django.contrib import admin

admin.site.site_header = "amodal runtime"
admin.site.site_title = "amodal"
admin.site.index_title = "Operations"
