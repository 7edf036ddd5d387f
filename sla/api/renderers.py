"""CSV for QA exports: one row per SLA report, columns from sla.selectors.REPORT_COLUMNS."""
import csv
import io

from rest_framework.renderers import BaseRenderer

from sla.selectors import REPORT_COLUMNS


class SlaReportCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out)
        if isinstance(data, dict):  # an error answer: keep it readable as CSV
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", "")])
            return out.getvalue().encode()
        return self.rows_text(data or [], header=True).encode()

    @staticmethod
    def rows_text(rows, *, header: bool) -> str:
        """CSV text of report rows (sla.selectors.report_row), with the header line first when asked."""
        out = io.StringIO()
        writer = csv.writer(out)
        if header:
            writer.writerow(REPORT_COLUMNS)
        for row in rows:
            values = []
            for column in REPORT_COLUMNS:
                value = row.get(column)
                if isinstance(value, list):
                    value = " | ".join(str(v) for v in value)
                values.append("" if value is None else value)
            writer.writerow(values)
        return out.getvalue()
