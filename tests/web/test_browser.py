"""The dashboard in a real browser: headless Chromium driven by selenium (Debian's chromium
and chromedriver; .ci/run installs them). Each wait is bounded and waits for what the page
shows, never for a fixed time."""
from __future__ import annotations

import datetime

import pytest

from tests._helpers import drain

pytestmark = pytest.mark.slow

WAIT = 20  # seconds: the longest any page may take to show a change (it polls every 2-3 s)


def wait_until(browser, condition, what):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, WAIT).until(lambda d: condition(d), message=what)


def text_of(browser, element_id):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    try:
        return browser.find_element('id', element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def console_errors(browser):
    return [entry for entry in browser.get_log('browser') if entry['level'] == 'SEVERE']


def open_page(browser, server, path):
    browser.get(server.url.rstrip('/') + path)
    console_errors(browser)  # the log is read (and emptied) per page


def test_overview_counts_follow_enqueues_and_drains(browser, server, web_queue):
    open_page(browser, server, '/')
    assert browser.title.startswith('Overview')
    assert text_of(browser, 'count-pending') == '0'
    add = web_queue.registry.get('app.add')
    for i in range(3):
        web_queue.enqueue(add((i, i)))
    wait_until(browser, lambda d: text_of(d, 'count-pending') == '3',
               'the pending count to show the 3 enqueued tasks')
    drain(web_queue)
    wait_until(browser, lambda d: text_of(d, 'count-pending') == '0'
               and text_of(d, 'runs-hour') == '3', 'the counts to show the drained tasks')
    assert browser.find_elements('css selector', 'svg.chart rect.ok')
    assert console_errors(browser) == []


def test_requeue_a_dead_letter_with_the_button(browser, server, web_queue):
    boom = web_queue.registry.get('app.boom')
    web_queue.enqueue(boom((1,)))
    drain(web_queue)
    assert web_queue.dead_letter_count() == 1
    open_page(browser, server, '/tasks/failed')
    browser.find_element('css selector', 'button.requeue').click()
    wait_until(browser, lambda d: 'no failed tasks' in d.page_source,
               'the failed list to be empty after the requeue')
    assert web_queue.dead_letter_count() == 0 and web_queue.pending_count() == 1
    assert console_errors(browser) == []


def test_purge_asks_first(browser, server, web_queue):
    from selenium.webdriver.support import expected_conditions
    boom = web_queue.registry.get('app.boom')
    web_queue.enqueue(boom((2,)))
    drain(web_queue)
    open_page(browser, server, '/tasks/failed')
    browser.find_element('css selector', 'button.purge').click()
    wait_until(browser, expected_conditions.alert_is_present(), 'the confirmation')
    browser.switch_to.alert.dismiss()  # no: nothing happens
    assert web_queue.dead_letter_count() == 1
    browser.find_element('css selector', 'button.purge').click()
    wait_until(browser, expected_conditions.alert_is_present(), 'the confirmation')
    browser.switch_to.alert.accept()
    wait_until(browser, lambda d: 'no failed tasks' in d.page_source, 'the purge')
    assert web_queue.dead_letter_count() == 0


def test_task_page_revoke_and_restore(browser, server, web_queue):
    add = web_queue.registry.get('app.add')
    task = add((4, 5))
    web_queue.enqueue(task)
    open_page(browser, server, '/task/%s' % task.id)
    assert text_of(browser, 'task-state') == 'pending'
    browser.find_element('css selector', 'button.revoke').click()
    wait_until(browser, lambda d: text_of(d, 'task-state') == 'revoked', 'the revoke')
    assert web_queue.is_revoked(task.id)
    browser.find_element('css selector', 'button.restore').click()
    wait_until(browser, lambda d: text_of(d, 'task-state') == 'pending', 'the restore')
    drain(web_queue)
    wait_until(browser, lambda d: text_of(d, 'task-state') == 'succeeded',
               'the task page to follow the run')
    assert '9' in browser.find_element('css selector', 'table.details').text
    assert console_errors(browser) == []


def test_every_page_loads_without_console_errors(browser, server, web_queue):
    add, boom = web_queue.registry.get('app.add'), web_queue.registry.get('app.boom')
    failing = boom(('<b>bold</b>',))
    web_queue.enqueue(failing)
    drain(web_queue)
    web_queue.enqueue(add((1, 1)))
    web_queue.enqueue(add((2, 2), eta=datetime.datetime.now() + datetime.timedelta(hours=1)))
    assert web_queue.scheduled_count() == 1
    for path in ('/', '/tasks/pending', '/tasks/scheduled', '/tasks/running', '/tasks/failed',
                 '/tasks/history', '/tasks/history?outcome=failed', '/task/%s' % failing.id,
                 '/tasks/pending?q=app.add'):
        open_page(browser, server, path)
        wait_until(browser, lambda d: d.execute_script(
            "const e = document.querySelector('[data-live]');"
            "return e !== null && e.dataset.last !== undefined;"),
            'a live refresh of %s' % path)
        assert console_errors(browser) == [], path
    # the failing task's argument is shown as text, not as markup
    open_page(browser, server, '/task/%s' % failing.id)
    assert '<b>bold</b>' in browser.find_element('css selector', 'table.details').text
    assert browser.find_elements('css selector', 'table.details b') == []
    assert 'ValueError' in browser.find_element('css selector', 'main').text
