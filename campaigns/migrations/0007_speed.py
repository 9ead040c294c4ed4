from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_performance")]

    operations = []
