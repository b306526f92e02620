# One image for the API and the workers; the command decides which it is.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    INSTANCE_DIR=/var/lib/jobs

# libseccomp2 backs the simulation sandbox (pyseccomp loads it at run time).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/jobs
COPY Pipfile Pipfile.lock ./
# The example job kinds are a path dependency of the Pipfile (installed editable).
COPY examples ./examples
RUN pip install pipenv \
    && pipenv install --system --deploy \
    && pip uninstall -y pipenv

COPY app ./app
COPY migrations ./migrations
COPY run.py tasks.py gunicorn.conf.py ./

RUN useradd --create-home --uid 10001 jobs \
    && mkdir -p "$INSTANCE_DIR" \
    && chown jobs "$INSTANCE_DIR"
USER jobs

EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
