from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_live_codes")]

    operations = []
